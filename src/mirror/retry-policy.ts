import { CrmError } from './crm-gateway';

export interface RetrySettings {
  baseMs: number;
  maxMs: number;
}

/**
 * When to try a failed run again, in ms from now; null when retrying cannot help.
 * Pipedrive's own wait wins on 429; otherwise exponential backoff with jitter
 * (between half and all of base·2^(attempt-1), capped), so that runs failed together
 * do not come back together.
 */
export function retryDelayMs(error: unknown, attempt: number, settings: RetrySettings, random = Math.random): number | null {
  if (error instanceof CrmError) {
    if (!error.retryable) return null;
    if (error.retryAfterMs !== undefined) return error.retryAfterMs + Math.round(random() * settings.baseMs * 0.1);
  }
  const ceiling = Math.min(settings.maxMs, settings.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
