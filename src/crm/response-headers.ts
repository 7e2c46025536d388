/** An answer's headers as undici gives them. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A header's first value, trimmed; undefined when absent or empty. */
export function headerValue(headers: ResponseHeaders, name: string): string | undefined {
  const raw = headers[name];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  return value === '' ? undefined : value;
}

/** A header holding a non-negative number; undefined when absent or malformed (every rate-limit header is optional). */
export function numericHeader(headers: ResponseHeaders, name: string): number | undefined {
  const value = headerValue(headers, name);
  if (value === undefined) return undefined;
  const number = Number(value);
  return Number.isFinite(number) && number >= 0 ? number : undefined;
}
