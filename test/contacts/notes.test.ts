import request from 'supertest';
import { createTestApp, type TestApp } from '../support/test-app';

let t: TestApp;
beforeAll(() => {
  t = createTestApp();
});
beforeEach(() => t.reset());
afterAll(() => t.close());

describe('POST /contact/note', () => {
  it('adds a note to a contact and answers 201 with its id', async () => {
    const contact = await request(t.app).post('/contact').send({ name: 'Ada' }).expect(201);
    const res = await request(t.app)
      .post('/contact/note')
      .send({ contact_id: contact.body.contact_id, content: 'Wants a demo on Tuesday ✔' })
      .expect(201);
    expect(res.body).toEqual({
      success: true,
      message: expect.any(String),
      note_id: expect.any(Number),
      crm_note_id: null,
      sync_status: 'disabled',
    });
    const note = await t.prisma.note.findUniqueOrThrow({ where: { id: res.body.note_id } });
    expect(note).toMatchObject({ contactId: contact.body.contact_id, content: 'Wants a demo on Tuesday ✔', crmId: null });
  });

  it('answers 404 NOT_FOUND for an unknown contact and stores nothing', async () => {
    const res = await request(t.app).post('/contact/note').send({ contact_id: 4242, content: 'Orphan' }).expect(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    expect(await t.prisma.note.count()).toBe(0);
  });

  it.each([
    ['no content', { contact_id: 1 }],
    ['blank content', { contact_id: 1, content: '   ' }],
    ['content not a string', { contact_id: 1, content: { text: 'x' } }],
    ['no contact_id', { content: 'x' }],
    ['negative contact_id', { contact_id: -1, content: 'x' }],
    ['unknown field', { contact_id: 1, content: 'x', pinned: true }],
  ])('rejects %s with 400 VALIDATION_ERROR', async (_label, body) => {
    await request(t.app).post('/contact').send({ name: 'Ada' }).expect(201);
    const res = await request(t.app).post('/contact/note').send(body).expect(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    expect(await t.prisma.note.count()).toBe(0);
  });
});
