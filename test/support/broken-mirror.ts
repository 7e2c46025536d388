import type { ContactMirror } from '../../src/contacts/mirror-port';

/** A mirror whose job queue fails unexpectedly, with `message`, whenever a contact is queued. */
export const brokenMirror = (message: string): ContactMirror => ({
  enqueueContact: async () => Promise.reject(new Error(message)),
  enqueueNote: async () => undefined,
  requeueContact: async () => 0,
  crmState: async () => 'ok',
});
