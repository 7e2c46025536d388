import { errorResponse, bodyErrors, commonErrors } from '../http/error-response';
import { defineRoute, type AnyRoute, type RouteResult } from '../http/route';
import type { Contact as ContactRecord, Note } from './contact';
import {
  Contact,
  ContactEventPage,
  ContactIdParams,
  ContactPage,
  CreateContactBody,
  CreateContactResponse,
  CreateNoteBody,
  CreateNoteResponse,
  ListContactsQuery,
  PageQuery,
  ResyncResponse,
  UpdateContactBody,
  UpdateContactResponse,
} from './contact.schemas';
import type { ContactService } from './contact.service';

const TAG = 'Contacts';

export function toContactJson(contact: ContactRecord) {
  return {
    id: contact.id,
    name: contact.name,
    email: contact.email,
    phone: contact.phone,
    phone_e164: contact.phoneE164,
    crm_id: contact.crmId,
    crm_deleted: contact.crmDeleted,
    sync_status: contact.syncStatus,
    crm_synced_at: contact.crmSyncedAt?.toISOString() ?? null,
    crm_last_error: contact.crmLastError,
    created_at: contact.createdAt.toISOString(),
    updated_at: contact.updatedAt.toISOString(),
  };
}

const contactCreated = (contact: ContactRecord): RouteResult => ({
  status: 201,
  body: { success: true, contact_id: contact.id, crm_id: contact.crmId, sync_status: contact.syncStatus, contact: toContactJson(contact) },
});

const noteAdded = (note: Note): RouteResult => ({
  status: 201,
  body: { success: true, message: 'Note added', note_id: note.id, crm_note_id: note.crmId, sync_status: note.syncStatus },
});

const notFound = errorResponse('NOT_FOUND: no such contact');
const conflict = errorResponse('CONTACT_EXISTS: the email belongs to another contact (its id is in contact_id)');
const badId = errorResponse('VALIDATION_ERROR: the id is not a positive integer');

export function contactRoutes(service: ContactService): AnyRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/contact',
      summary: 'Record a new contact',
      tag: TAG,
      body: CreateContactBody,
      responses: {
        201: { description: 'Created', schema: CreateContactResponse },
        409: conflict,
        ...bodyErrors,
        ...commonErrors,
      },
      idempotent: true,
      handle: async ({ body }) => {
        const contact = await service.createContact(body);
        return { ...contactCreated(contact), settle: async () => contactCreated(await service.awaitContactMirror(contact)) };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/contact/note',
      summary: 'Add a note to a contact',
      tag: TAG,
      body: CreateNoteBody,
      responses: {
        201: { description: 'Created', schema: CreateNoteResponse },
        404: notFound,
        ...bodyErrors,
        ...commonErrors,
      },
      idempotent: true,
      handle: async ({ body }) => {
        const note = await service.addNote(body.contact_id, body.content);
        return { ...noteAdded(note), settle: async () => noteAdded(await service.awaitNoteMirror(note)) };
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/contact',
      summary: 'Change some fields of a contact',
      tag: TAG,
      body: UpdateContactBody,
      responses: {
        200: { description: 'Updated', schema: UpdateContactResponse },
        404: notFound,
        409: conflict,
        ...bodyErrors,
        ...commonErrors,
      },
      handle: async ({ body }) => {
        const contact = await service.updateContact(body.contact_id, body.fields);
        return { status: 200, body: { success: true, message: 'Contact updated', contact: toContactJson(contact) } };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/contacts',
      summary: 'List contacts, optionally filtered by name or email',
      tag: TAG,
      query: ListContactsQuery,
      responses: {
        200: { description: 'A page of contacts, oldest first', schema: ContactPage },
        400: errorResponse('VALIDATION_ERROR: bad skip, limit, search or email'),
        ...commonErrors,
      },
      handle: async ({ query }) => {
        const { items, total } = await service.listContacts(query);
        return { status: 200, body: { items: items.map(toContactJson), total, skip: query.skip, limit: query.limit } };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/contact/:id',
      summary: 'Read one contact',
      tag: TAG,
      params: ContactIdParams,
      responses: { 200: { description: 'The contact', schema: Contact }, 400: badId, 404: notFound, ...commonErrors },
      handle: async ({ params }) => ({ status: 200, body: toContactJson(await service.getContact(params.id)) }),
    }),
    defineRoute({
      method: 'get',
      path: '/contact/:id/events',
      summary: "A contact's audit trail: created, updated, note_added, crm_synced, crm_failed, oldest first",
      tag: TAG,
      params: ContactIdParams,
      query: PageQuery,
      responses: {
        200: { description: 'A page of events', schema: ContactEventPage },
        400: errorResponse('VALIDATION_ERROR: bad id, skip or limit'),
        404: notFound,
        ...commonErrors,
      },
      handle: async ({ params, query }) => {
        const { items, total } = await service.listEvents(params.id, query);
        return {
          status: 200,
          body: {
            items: items.map((event) => ({
              id: event.id,
              type: event.type,
              source: event.source,
              payload: event.payload,
              created_at: event.createdAt.toISOString(),
            })),
            total,
            skip: query.skip,
            limit: query.limit,
          },
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/contact/:id/sync',
      summary: 'Queue the Pipedrive mirror of a contact again now, with its failed notes (a synced contact is sent whole)',
      tag: TAG,
      params: ContactIdParams,
      responses: {
        202: { description: 'Queued', schema: ResyncResponse },
        400: badId,
        404: notFound,
        409: errorResponse('CRM_DISABLED: no Pipedrive key is configured'),
        ...commonErrors,
      },
      handle: async ({ params }) => {
        const { contact, requeued } = await service.resyncContact(params.id);
        return {
          status: 202,
          body: {
            success: true,
            message: 'Mirror queued',
            contact_id: contact.id,
            sync_status: contact.syncStatus,
            requeued_jobs: requeued,
          },
        };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/contact/:id',
      summary: 'Delete a contact and its notes',
      tag: TAG,
      params: ContactIdParams,
      responses: { 204: { description: 'Deleted' }, 400: badId, 404: notFound, ...commonErrors },
      handle: async ({ params }) => {
        await service.deleteContact(params.id);
        return { status: 204 };
      },
    }),
  ];
}
