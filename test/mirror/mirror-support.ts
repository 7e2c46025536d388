import { FakePipedrive, type RecordedRequest } from '../../testkit/fake-pipedrive';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';

/** Mirror settings scaled down so that retries happen within a test's time. */
export const fastMirrorEnv = (fake: FakePipedrive, overrides: Record<string, string> = {}) => ({
  PIPEDRIVE_API_KEY: fake.token,
  PIPEDRIVE_BASE_URL: fake.url,
  PIPEDRIVE_TIMEOUT_MS: '500',
  CRM_SYNC_WAIT_MS: '2000',
  SYNC_RETRY_BASE_MS: '50',
  SYNC_RETRY_MAX_MS: '300',
  SYNC_POLL_INTERVAL_MS: '50',
  SYNC_MAX_ATTEMPTS: '20',
  // The index is filled by the first run, not raced by a refresh at start: tests count the calls.
  PIPEDRIVE_INDEX_REFRESH_INTERVAL_MS: '0',
  ...overrides,
});

export async function startMirroredApp(fake: FakePipedrive, env: Record<string, string> = {}): Promise<TestApp> {
  const t = createTestApp({ env: fastMirrorEnv(fake, env) });
  await t.reset();
  await t.startWorker();
  return t;
}

export const personCreations = (fake: FakePipedrive) =>
  fake.requests.filter((r) => r.method === 'POST' && r.path === '/api/v2/persons');

export const requestsFor = (fake: FakePipedrive, predicate: (r: RecordedRequest) => boolean) => fake.requests.filter(predicate);

export async function waitUntilSettled(t: TestApp, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    'every contact and note to leave pending',
    async () =>
      (await t.prisma.contact.count({ where: { syncStatus: 'pending' } })) === 0 &&
      (await t.prisma.note.count({ where: { syncStatus: 'pending' } })) === 0,
    timeoutMs,
  );
}

export const personsByEmail = (fake: FakePipedrive, email: string) =>
  [...fake.persons.values()].filter((person) => person.emails.some((item) => item.value === email));
