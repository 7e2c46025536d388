import { z } from 'zod';
import { CHANGE_SOURCES, CONTACT_EVENT_TYPES } from './contact';

/**
 * The contact API's contract: each schema validates a payload, gives its
 * TypeScript type and describes it in the OpenAPI document.
 */

/** PostgreSQL `integer`: larger ids cannot exist and would fail in the driver. */
const MAX_ID = 2_147_483_647;

const id = z.number().int().positive().max(MAX_ID);

export const ContactId = id.meta({ description: 'Contact id', example: 42 });

export const ContactIdParams = z
  .object({
    id: z
      .string()
      .regex(/^[1-9][0-9]{0,9}$/, 'must be a positive integer')
      .transform(Number)
      .pipe(id),
  })
  .meta({ id: 'ContactIdParams' });

/** PostgreSQL text cannot hold NUL, nor can unpaired UTF-16 surrogates be stored: refuse them up front. */
const storableText = (schema: z.ZodString) =>
  schema.refine((text) => !text.includes('\u0000') && !/\p{Surrogate}/u.test(text), 'must not contain NUL characters or unpaired surrogates');

const name = storableText(z.string().trim().min(1, 'must not be empty').max(255));

/** Stored trimmed and lower-cased so that one address is one contact whatever its spelling. */
const email = z.string().trim().toLowerCase().max(255).pipe(z.email());

/** Characters only: whether it is a valid number is decided by the service (src/contacts/phone-numbers.ts). */
const phone = z
  .string()
  .trim()
  .max(20)
  .regex(/^\+?[0-9][0-9 ()./-]{1,19}$/, 'must be a phone number: digits, spaces and + ( ) . / -');

/** Forms send "" for a field left blank: that means "no value", like null. */
const blankAsNull = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? null : value);
const clearable = <T extends z.ZodType>(schema: T) => z.preprocess(blankAsNull, schema.nullable());

export const CreateContactBody = z
  .strictObject({
    name: name.meta({ example: 'Ada Lovelace' }),
    email: clearable(email).optional().meta({ example: 'ada@example.com' }),
    phone: clearable(phone).optional().meta({ example: '+44 20 7946 0000' }),
  })
  .meta({ id: 'CreateContactBody' });
export type CreateContactInput = z.output<typeof CreateContactBody>;

export const ContactFields = z
  .strictObject({
    name: name.optional(),
    email: clearable(email).optional(),
    phone: clearable(phone).optional(),
  })
  .refine((fields) => Object.keys(fields).length > 0, 'must name at least one of name, email, phone')
  .meta({ id: 'ContactFields', description: 'The fields to change; null or "" clears email or phone.' });
export type ContactChanges = z.output<typeof ContactFields>;

export const UpdateContactBody = z
  .strictObject({ contact_id: ContactId, fields: ContactFields })
  .meta({ id: 'UpdateContactBody' });

export const CreateNoteBody = z
  .strictObject({
    contact_id: ContactId,
    content: storableText(z.string().trim().min(1, 'must not be empty').max(100_000)).meta({ example: 'Called, wants a demo' }),
  })
  .meta({ id: 'CreateNoteBody' });

export const MAX_PAGE_SIZE = 200;

const queryInteger = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const pageFields = {
  skip: queryInteger(0, MAX_ID).default(0),
  limit: queryInteger(1, MAX_PAGE_SIZE).default(50),
};

export const PageQuery = z.object(pageFields).meta({ id: 'PageQuery' });
export type PageFilter = z.output<typeof PageQuery>;

export const ListContactsQuery = z
  .object({
    ...pageFields,
    search: storableText(z.string().trim().max(255)).optional().meta({ description: 'Case-insensitive substring of the name' }),
    email: email.optional().meta({ description: 'Exact email address (any case)' }),
    phone: phone.optional().meta({ description: 'Phone number in any form (+44 20 7946 0000, +442079460000): contacts with that number' }),
  })
  .meta({ id: 'ListContactsQuery' });
export type ListContactsFilter = z.output<typeof ListContactsQuery>;

export const SyncStatus = z.enum(['disabled', 'pending', 'synced', 'failed']).meta({
  id: 'SyncStatus',
  description: 'disabled: no CRM configured; pending: being mirrored; synced: in Pipedrive; failed: gave up (see crm_last_error)',
});

export const Contact = z
  .object({
    id: ContactId,
    name: z.string(),
    email: z.string().nullable(),
    phone: z.string().nullable().meta({ description: 'The phone as it was given' }),
    phone_e164: z
      .string()
      .nullable()
      .meta({ description: 'The phone in E.164, as matched and sent to Pipedrive; null for a number stored before it was read as valid', example: '+442079460000' }),
    crm_id: z.number().int().nullable().meta({ description: 'Pipedrive person id, once mirrored' }),
    crm_deleted: z.boolean().meta({ description: 'The sales team deleted its Pipedrive person: the contact is kept but not mirrored until POST /contact/{id}/sync' }),
    sync_status: SyncStatus,
    crm_synced_at: z.iso.datetime().nullable(),
    crm_last_error: z.string().nullable(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'Contact' });

export const CreateContactResponse = z
  .object({
    success: z.literal(true),
    contact_id: ContactId,
    crm_id: z.number().int().nullable().meta({ description: 'Null while the mirror is pending (past CRM_SYNC_WAIT_MS)' }),
    sync_status: SyncStatus,
    contact: Contact,
  })
  .meta({ id: 'CreateContactResponse' });

export const UpdateContactResponse = z
  .object({ success: z.literal(true), message: z.string(), contact: Contact })
  .meta({ id: 'UpdateContactResponse' });

export const CreateNoteResponse = z
  .object({
    success: z.literal(true),
    message: z.string(),
    note_id: z.number().int(),
    crm_note_id: z.number().int().nullable(),
    sync_status: SyncStatus,
  })
  .meta({ id: 'CreateNoteResponse' });

export const ResyncResponse = z
  .object({
    success: z.literal(true),
    message: z.string(),
    contact_id: ContactId,
    sync_status: SyncStatus,
    requeued_jobs: z.number().int().meta({ description: 'Rows queued again: the contact, and its notes whose mirror had failed' }),
  })
  .meta({ id: 'ResyncResponse' });

/** A page of a longer list, with the total and the bounds it was asked for. */
const pageOf = <T extends z.ZodType>(item: T, id: string) =>
  z
    .object({
      items: z.array(item),
      total: z.number().int(),
      skip: z.number().int(),
      limit: z.number().int(),
    })
    .meta({ id });

export const ContactPage = pageOf(Contact, 'ContactPage');

export const ContactEvent = z
  .object({
    id: z.number().int(),
    type: z.enum(CONTACT_EVENT_TYPES),
    source: z.enum(CHANGE_SOURCES).meta({ description: 'Where the change came from: api (a caller), pipedrive (the sales team, by webhook or refresh), import (an operator\'s import), mirror (the Pipedrive mirror\'s own work)' }),
    payload: z.record(z.string(), z.unknown()).meta({ description: 'Details of the event; its fields depend on the type' }),
    created_at: z.iso.datetime(),
  })
  .meta({ id: 'ContactEvent' });

export const ContactEventPage = pageOf(ContactEvent, 'ContactEventPage');
