import { createHash } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { buildServices, type Services } from '../composition';
import { ContactExistsError } from '../contacts/contact-errors';
import { CreateContactBody } from '../contacts/contact.schemas';
import { ValidationError } from '../errors';
import type { InboundOutcome } from '../inbound/inbound-sync';
import { budgetDayStart, nextBudgetReset } from '../mirror/token-budget';
import type { Context } from './commands';
import { connect } from './commands';
import { OpsError } from './errors';
import { stderrLogger } from './log';
import { OperatorRunsRepository } from './operator-runs.repository';
import { budgetEta, Progress, type ProgressState } from './progress';
import { TransactionScope } from '../db/transaction-scope';

/**
 * The two-way sync's operator commands (README, "Two-way sync"): the Pipedrive webhook
 * subscriptions, the import of Pipedrive's persons, the push of never-mirrored contacts, and the
 * import of a CSV file. Each long one shows its progress on stderr, can be interrupted (Ctrl-C) and
 * run again to go on where it stopped, has a --dry-run, and stops at the daily token reserve.
 */

/** Pipedrive's largest page, and what one costs (x-token-cost of GET /api/v2/persons). */
const PAGE_SIZE = 500;
const PAGE_TOKENS = 10;
/** x-token-cost of POST and DELETE /v1/webhooks. */
const WEBHOOK_CREATE_TOKENS = 10;
const WEBHOOK_DELETE_TOKENS = 6;
/**
 * What mirroring one new contact costs on average, measured (docs/benchmarks.md: 1,000 new
 * contacts, 5,070 tokens): a creation (5), and the index's share of reads.
 */
const TOKENS_PER_NEW_CONTACT = 5.1;
const PUSH_BATCH = 500;
/** CSV rows between saved positions: an interruption redoes at most these (already deduplicated). */
const CSV_SAVE_EVERY = 100;
/** The name the subscriptions this service installs carry in Pipedrive's settings. */
const WEBHOOK_NAME = 'contact-sync';

/** A command stopped before its end (the budget reserve, or an interruption): run it again to go on. */
export const EXIT_UNFINISHED = 3;

type Counts = Record<string, number>;

const tally = (counts: Counts, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};
const sum = (counts: Counts, keys: string[]) => keys.reduce((total, key) => total + (counts[key] ?? 0), 0);
/** Counts by name, in a stable order (jsonb keeps keys in its own). */
const describeCounts = (counts: Counts) =>
  Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, n]) => `${key} ${n}`)
    .join(', ') || 'nothing';

/** Runs `work` with the service's parts over the target database, and closes them after. */
async function withServices<T>(ctx: Context, work: (services: Services) => Promise<T>): Promise<T> {
  await connect(ctx);
  const services = buildServices(ctx.config, ctx.target.url, stderrLogger());
  try {
    return await work(services);
  } finally {
    await services.close();
  }
}

function requirePipedrive(services: Services): NonNullable<Services['pipedrive']> {
  if (!services.pipedrive) throw new OpsError('PIPEDRIVE_API_KEY is not set: this command talks to Pipedrive');
  return services.pipedrive;
}

interface Tokens {
  left: number | null;
  limit: number | null;
  reserve: number;
  resetsAt: Date;
}

/** The day's tokens as the mirror knows them, and what the reserve leaves for bulk work. */
async function budget(services: Services): Promise<Tokens> {
  const { reserve, resetHourUtc } = services.budgetSettings;
  const now = new Date();
  const use = await services.mirrorRepository.tokenUse(budgetDayStart(now, resetHourUtc));
  return { left: use.left, limit: use.limit, reserve, resetsAt: nextBudgetReset(now, resetHourUtc) };
}

/** Whether a call of `cost` tokens would eat into the reserve kept for live changes. */
const overReserve = (tokens: { left: number | null; reserve: number }, cost: number) => tokens.left !== null && tokens.left - cost < tokens.reserve;

/** Ctrl-C during `work`: the progress says where it stopped, and the command ends as unfinished. */
async function interruptible(progress: Progress, work: (stopped: () => boolean) => Promise<number>): Promise<number> {
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const code = await work(() => interrupted);
    if (interrupted) {
      progress.interrupt();
      return EXIT_UNFINISHED;
    }
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export type WebhooksAction = { kind: 'install'; url: string; dryRun: boolean } | { kind: 'list' } | { kind: 'remove'; dryRun: boolean };

/** pipedrive webhooks install | list | remove. */
export async function webhooks(ctx: Context, action: WebhooksAction): Promise<number> {
  return withServices(ctx, async (services) => {
    const { client } = requirePipedrive(services);
    const credentials = ctx.config.inbound.webhook;
    const ours = (await client.listWebhooks()).filter((hook) => hook.object === 'person' || hook.object === '*');
    switch (action.kind) {
      case 'list': {
        if (ours.length === 0) ctx.out('No person webhooks are installed.\n');
        for (const hook of ours) {
          ctx.out(`${hook.id}  ${hook.action}.${hook.object}  v${hook.version}  ${hook.active ? 'active' : 'INACTIVE'}  ${hook.url}  user ${hook.user ?? '(none)'}\n`);
        }
        return 0;
      }
      case 'install': {
        if (!credentials) throw new OpsError('set PIPEDRIVE_WEBHOOK_USER and PIPEDRIVE_WEBHOOK_PASSWORD first: Pipedrive sends them with every delivery');
        if (ctx.config.inbound.mode === 'off') throw new OpsError('PIPEDRIVE_INBOUND is off: the service would not receive the deliveries');
        const target = new URL('/webhooks/pipedrive', action.url).toString();
        // Replaced, not duplicated: a subscription to the same URL (with older credentials, say) goes first.
        const stale = ours.filter((hook) => hook.url === target);
        const cost = stale.length * WEBHOOK_DELETE_TOKENS + WEBHOOK_CREATE_TOKENS;
        if (action.dryRun) {
          ctx.out(`Would ${stale.length > 0 ? `replace ${stale.length} subscription(s) to` : 'subscribe'} ${target} to every person change (webhooks v2, Basic user ${credentials.user}): ${cost} tokens.\n`);
          return 0;
        }
        for (const hook of stale) await client.deleteWebhook(hook.id);
        const created = await client.createWebhook({ url: target, action: '*', object: 'person', name: WEBHOOK_NAME, ...credentials });
        ctx.out(`Installed webhook ${created.id}: every person change goes to ${target} (v${created.version}, Basic user ${credentials.user}); ${cost} tokens.\n`);
        return 0;
      }
      case 'remove': {
        const receiver = ours.filter((hook) => hook.url.endsWith('/webhooks/pipedrive'));
        if (action.dryRun) {
          ctx.out(`Would remove ${receiver.length} subscription(s): ${receiver.length * WEBHOOK_DELETE_TOKENS} tokens.\n`);
          return 0;
        }
        for (const hook of receiver) await client.deleteWebhook(hook.id);
        ctx.out(`Removed ${receiver.length} subscription(s). Changes made in Pipedrive now arrive with the index refresh only.\n`);
        return 0;
      }
    }
  });
}

const IMPORT_OUTCOMES: Record<InboundOutcome, string> = {
  imported: 'created',
  linked: 'linked',
  applied: 'updated',
  'kept-local': 'unchanged',
  unchanged: 'unchanged',
  stale: 'unchanged',
  indexed: 'skipped',
  unlinked: 'skipped',
  relinked: 'skipped',
};

/** pipedrive import: every person becomes a contact or is linked to one (by email, else E.164 phone). */
export async function importPersons(ctx: Context, options: { dryRun: boolean; restart: boolean }): Promise<number> {
  return withServices(ctx, async (services) => {
    const { client, index } = requirePipedrive(services);
    const tokens = await budget(services);
    if (options.dryRun) {
      const preview = await services.inbound.importPreview();
      const pages = Math.max(1, Math.ceil(preview.persons / PAGE_SIZE));
      ctx.out(
        `From the person index (${preview.persons} persons, as of its last refresh): ${preview.wouldCreate} would become contacts, ` +
          `${preview.wouldLink} would be linked to a contact with their email or phone, ${preview.mirrored} are mirrored already.\n` +
          `Reading them costs about ${pages * PAGE_TOKENS} tokens (${pages} page(s) of ${PAGE_SIZE}); ${tokensLine(tokens)}: ${budgetVerdict(tokens, pages * PAGE_TOKENS)}.\n`,
      );
      return 0;
    }
    const runs = new OperatorRunsRepository(new TransactionScope(services.prisma));
    const run = await runs.begin('import', 'pipedrive', options.restart);
    const counts: Counts = { ...run.counts };
    const estimate = (await services.inbound.importPreview()).persons;
    const progress = new Progress({
      label: 'Importing Pipedrive persons',
      total: estimate > 0 ? estimate : null,
      stream: process.stderr,
      eta: (state) => (state.total === null ? null : tokenEta(tokens, state.total - state.done, PAGE_TOKENS / PAGE_SIZE, state.ratePerSecond)),
    });
    if (run.resumed) ctx.err(`Going on from an interrupted import (${describeCounts(counts)} so far).\n`);
    // Several outcomes share a count: each count once.
    let done = sum(counts, [...new Set(Object.values(IMPORT_OUTCOMES))]);
    return interruptible(progress, async (stopped) => {
      let cursor = run.position ?? undefined;
      for (;;) {
        if (stopped()) return EXIT_UNFINISHED;
        if (overReserve(await budget(services), PAGE_TOKENS)) {
          progress.finish(`Stopped at the daily token reserve (${tokens.reserve}); run the same command after ${tokens.resetsAt.toISOString()} to go on.`);
          return EXIT_UNFINISHED;
        }
        const page = await client.listPersons({ cursor, limit: PAGE_SIZE });
        await index.recordAll(page.persons);
        for (const person of page.persons) {
          tally(counts, IMPORT_OUTCOMES[await services.inbound.takeIn(person, { importable: true, source: 'import', force: true })]);
          done += 1;
        }
        cursor = page.nextCursor ?? undefined;
        await runs.save('import', 'pipedrive', cursor ?? null, counts);
        if (done > (estimate || 0)) progress.setTotal(null);
        progress.update(done, counts);
        if (!cursor) break;
      }
      await runs.finish('import', 'pipedrive', counts);
      progress.finish(`Imported: ${describeCounts(counts)}.`);
      return 0;
    });
  });
}

function tokensLine(tokens: Tokens): string {
  const left = tokens.left === null ? 'tokens left today not reported yet' : `${tokens.left} tokens left today`;
  return `${left}, reserve ${tokens.reserve}, budget back at ${tokens.resetsAt.toISOString()}`;
}

/** Whether `needed` tokens fit in what the day leaves above the reserve. */
function budgetVerdict(tokens: Tokens, needed: number): string {
  if (tokens.left === null) return 'how much of it today covers is known after the first call';
  const available = Math.max(0, tokens.left - tokens.reserve);
  return needed <= available ? 'today\'s budget covers it' : `today leaves ${available} of them above the reserve; the rest waits for the budget to come back`;
}

/** The ETA of `remaining` units of `tokensPerUnit` each, from the rate and the day's budget above the reserve. */
function tokenEta(tokens: Tokens, remaining: number, tokensPerUnit: number, ratePerSecond: number | null) {
  return budgetEta({
    remaining,
    tokensPerUnit,
    ratePerSecond,
    tokensLeft: tokens.left,
    reserve: tokens.reserve,
    dailyLimit: tokens.limit,
    nextResetAt: tokens.resetsAt,
    now: new Date(),
  });
}

/** pipedrive push: every contact never mirrored is queued as bulk work; with `wait`, follows the mirror until they are in Pipedrive. */
export async function push(ctx: Context, options: { dryRun: boolean; wait: boolean; pollMs?: number }): Promise<number> {
  return withServices(ctx, async (services) => {
    requirePipedrive(services);
    const store = services.mirrorRepository;
    const tokens = await budget(services);
    const waiting = await store.countNeverMirrored();
    if (options.dryRun) {
      const needed = Math.ceil(waiting * TOKENS_PER_NEW_CONTACT);
      ctx.out(
        `${waiting} contact(s) were never mirrored; pushing them costs about ${needed} tokens (${TOKENS_PER_NEW_CONTACT} per new contact); ` +
          `${tokensLine(tokens)}: ${budgetVerdict(tokens, needed)}.\n`,
      );
      return 0;
    }
    const queueing = new Progress({ label: 'Queueing never-mirrored contacts', total: waiting, stream: process.stderr });
    let queued = 0;
    const code = await interruptible(queueing, async (stopped) => {
      for (;;) {
        if (stopped()) return EXIT_UNFINISHED;
        const batch = await store.queueNeverMirrored(PUSH_BATCH);
        if (batch === 0) break;
        queued += batch;
        queueing.update(queued, { queued });
      }
      queueing.finish(`Queued ${queued} contact(s) as bulk work: the mirror sends them after every live change, and stops at the reserve.`);
      return 0;
    });
    if (code !== 0 || !options.wait) return code;
    const total = await store.bulkQueued();
    const following = new Progress({
      label: 'Mirroring to Pipedrive',
      total,
      stream: process.stderr,
      eta: (state: ProgressState) => tokenEta(tokens, total - state.done, TOKENS_PER_NEW_CONTACT, state.ratePerSecond),
    });
    return interruptible(following, async (stopped) => {
      for (;;) {
        const left = await store.bulkQueued();
        following.update(total - left, { synced: total - left });
        if (left === 0) break;
        if (stopped()) return EXIT_UNFINISHED;
        await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1_000));
      }
      following.finish('Every pushed contact has left the queue (see GET /sync/status for failures).');
      return 0;
    });
  });
}

/** A CSV header, read in any case and with the usual variants. */
const CSV_COLUMNS: Record<string, 'name' | 'email' | 'phone'> = {
  name: 'name',
  'full name': 'name',
  email: 'email',
  'e-mail': 'email',
  'email address': 'email',
  phone: 'phone',
  'phone number': 'phone',
  telephone: 'phone',
  mobile: 'phone',
};

/** One rejected row: its line in the file (the header is line 1) and why. */
interface Rejection {
  line: number;
  reason: string;
  row: Record<string, string>;
}

const csvCell = (text: string) => (/[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);

/** import-csv: contacts from a spreadsheet export, through POST /contact's validation and dedupe. */
export async function importCsv(ctx: Context, file: string, options: { dryRun: boolean; restart: boolean; report?: string }): Promise<number> {
  const content = await readFile(file).catch((error: unknown) => {
    throw new OpsError(`cannot read ${file}: ${(error as Error).message}`);
  });
  let rows: Record<string, string>[];
  try {
    rows = parse(content, { columns: (header: string[]) => header.map((name) => name.trim().toLowerCase()), skip_empty_lines: true, bom: true, trim: true, relax_column_count: true });
  } catch (error) {
    throw new OpsError(`${file} is not a CSV file this command reads: ${(error as Error).message}`);
  }
  const first = rows[0];
  if (first && !Object.keys(first).some((name) => CSV_COLUMNS[name] === 'name')) {
    throw new OpsError(`${file} has no name column (its header needs name, and may have email and phone)`);
  }
  const subject = createHash('sha256').update(content).digest('hex');
  return withServices(ctx, async (services) => {
    const runs = new OperatorRunsRepository(new TransactionScope(services.prisma));
    const run = options.dryRun ? null : await runs.begin('import-csv', subject, options.restart);
    const counts: Counts = { ...(run?.counts ?? {}) };
    const startAt = run?.position ? Number(run.position) : 0;
    if (run?.resumed) ctx.err(`Going on from row ${startAt + 1} of an interrupted import of this file (${describeCounts(counts)} so far).\n`);
    const progress = new Progress({ label: `${options.dryRun ? 'Checking' : 'Importing'} ${file}`, total: rows.length, stream: process.stderr });
    const rejections: Rejection[] = [];
    const seenEmails = new Set<string>();
    let index = startAt;
    const code = await interruptible(progress, async (stopped) => {
      for (; index < rows.length; index += 1) {
        if (stopped()) break;
        const row = rows[index]!;
        const outcome = await importRow(services, row, options.dryRun, seenEmails);
        if (typeof outcome === 'object') {
          rejections.push({ line: index + 2, reason: outcome.reason, row });
          tally(counts, outcome.kind);
        } else tally(counts, outcome);
        if (run && (index + 1) % CSV_SAVE_EVERY === 0) await runs.save('import-csv', subject, String(index + 1), counts);
        progress.update(index + 1, counts);
      }
      if (run) {
        if (index < rows.length) await runs.save('import-csv', subject, String(index), counts);
        else await runs.finish('import-csv', subject, counts);
      }
      if (index < rows.length) return EXIT_UNFINISHED;
      const created = counts.created ?? counts['would create'] ?? 0;
      progress.finish(`${options.dryRun ? 'Dry run: ' : ''}${describeCounts(counts)}; mirroring ${created} new contact(s) costs about ${Math.ceil(created * TOKENS_PER_NEW_CONTACT)} tokens.`);
      return 0;
    });
    for (const rejection of rejections) ctx.out(`line ${rejection.line}: ${rejection.reason}\n`);
    if (options.report && rejections.length > 0) {
      const lines = rejections.map((r) => [String(r.line), r.reason, r.row.name ?? '', r.row.email ?? '', r.row.phone ?? ''].map(csvCell).join(','));
      const header = run?.resumed ? '' : 'line,reason,name,email,phone\n';
      await (run?.resumed ? appendFile : writeFile)(options.report, `${header}${lines.join('\n')}\n`);
      ctx.out(`Rejected rows written to ${options.report}.\n`);
    }
    return code;
  });
}

type RowOutcome = 'created' | 'would create' | { kind: 'duplicate' | 'rejected'; reason: string };

/** One CSV row, as POST /contact would take it (dry run: without writing). */
async function importRow(services: Services, row: Record<string, string>, dryRun: boolean, seenEmails: Set<string>): Promise<RowOutcome> {
  const fields: Record<string, string> = {};
  for (const [header, value] of Object.entries(row)) {
    const field = CSV_COLUMNS[header];
    if (field && value !== '' && fields[field] === undefined) fields[field] = value;
  }
  const parsed = CreateContactBody.safeParse(fields);
  if (!parsed.success) {
    return { kind: 'rejected', reason: parsed.error.issues.map((issue) => `${issue.path.join('.') || 'row'}: ${issue.message}`).join('; ') };
  }
  try {
    if (dryRun) {
      const existing = await services.contactService.checkNewContact(parsed.data);
      const email = parsed.data.email ?? null;
      if (existing !== null) return { kind: 'duplicate', reason: `contact ${existing} has this email` };
      if (email !== null && seenEmails.has(email)) return { kind: 'duplicate', reason: 'an earlier row has this email' };
      if (email !== null) seenEmails.add(email);
      return 'would create';
    }
    await services.contactService.createContact(parsed.data, { source: 'import', bulk: true });
    return 'created';
  } catch (error) {
    if (error instanceof ContactExistsError) return { kind: 'duplicate', reason: error.message };
    if (error instanceof ValidationError) return { kind: 'rejected', reason: error.issues.map((issue) => `${issue.field}: ${issue.message}`).join('; ') };
    throw error;
  }
}
