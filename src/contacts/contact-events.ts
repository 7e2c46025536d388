import type { ContactEventType, Prisma } from '@prisma/client';

/**
 * Appends to a contact's audit trail. Always called with the transaction of the change
 * it records, so the trail can neither miss a change nor tell of one that was rolled back.
 */
export async function appendContactEvent(
  tx: Prisma.TransactionClient,
  contactId: number,
  type: ContactEventType,
  payload: Prisma.InputJsonObject,
): Promise<void> {
  await tx.contactEvent.create({ data: { contactId, type, payload } });
}
