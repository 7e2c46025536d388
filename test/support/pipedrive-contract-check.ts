import { FakePipedrive } from '../../testkit/fake-pipedrive';

/**
 * A request that Pipedrive's published documents reject fails the test that sent it, even when the
 * test's own assertions did not look at that request (the fake records it; see contractViolations).
 */
afterEach(() => {
  const violations = [...FakePipedrive.running].flatMap((fake) => fake.contractViolations.splice(0));
  if (violations.length > 0) {
    throw new Error(`Pipedrive's documents reject:\n  ${violations.join('\n  ')}`);
  }
});
