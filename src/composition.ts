import type { Express } from 'express';
import type { Config } from './config/config';
import { ContactRepository } from './contacts/contact.repository';
import { ContactService } from './contacts/contact.service';
import { PhoneNumbers } from './contacts/phone-numbers';
import type { ContactMirror } from './contacts/mirror-port';
import { PipedriveClient } from './crm/pipedrive-client';
import { RateLimitsRepository } from './crm/rate-limits.repository';
import { SharedRateLimits } from './crm/shared-rate-limits';
import { createPrismaClient, type PrismaClient } from './db/prisma';
import { TransactionScope } from './db/transaction-scope';
import { contactRoutes } from './contacts/contact.routes';
import { createApp } from './http/app';
import { healthRoutes, type HealthChecks } from './http/health.routes';
import { InFlightRequests } from './http/in-flight';
import type { AnyRoute } from './http/route';
import { IdempotencyKeysRepository } from './idempotency/idempotency-keys.repository';
import { IdempotentRequests } from './idempotency/idempotent-requests';
import type { Logger } from './logger';
import { Metrics } from './metrics/metrics';
import { QueuedMirror } from './mirror/contact-mirror';
import { CrmHealth } from './mirror/crm-health';
import { MirrorRuns } from './mirror/mirror-runs';
import { PersonIndex } from './mirror/person-index';
import { PersonIndexRepository } from './mirror/person-index.repository';
import { startMirrorWorker, type MirrorWorker } from './mirror/mirror-worker';
import { MirrorRepository } from './mirror/mirror.repository';
import { mirrorRoutes } from './mirror/mirror.routes';
import { budgetDayStart, TokenBudget, type BudgetSettings } from './mirror/token-budget';
import { DeliveriesRepository } from './inbound/deliveries.repository';
import { InboundRepository } from './inbound/inbound.repository';
import { InboundSync } from './inbound/inbound-sync';
import { webhookRoutes } from './inbound/webhook.routes';

export interface Services {
  prisma: PrismaClient;
  health: HealthChecks;
  idempotency: IdempotentRequests;
  contactService: ContactService;
  mirrorRepository: MirrorRepository;
  /** How the mirror spends Pipedrive's daily token budget. */
  budgetSettings: BudgetSettings;
  metrics: Metrics;
  /** Runs the mirror; undefined when no Pipedrive key is configured. */
  startWorker?: () => Promise<MirrorWorker>;
  /** Takes in changes made in Pipedrive (webhooks, the index refresh, the import command). */
  inbound: InboundSync;
  /** The Pipedrive adapter (counted against the shared budget and rate limits) and the person index; undefined without a key. */
  pipedrive?: { client: PipedriveClient; index: PersonIndex };
  /** POST /webhooks/pipedrive, when inbound is on and its credentials are configured. */
  webhookRoutes: AnyRoute[];
  close(): Promise<void>;
}

export interface ServiceOverrides {
  /** Replaces the Pipedrive mirror the configuration describes. */
  mirror?: ContactMirror;
}

/** Wires the service's parts from the configuration: the one place that knows them all. */
export function buildServices(config: Config, databaseUrl: string, logger: Logger, overrides: ServiceOverrides = {}): Services {
  const database = createPrismaClient({ ...config.database, url: databaseUrl }, logger);
  const prisma = database.prisma;
  const db = new TransactionScope(prisma);
  const mirrorRepository = new MirrorRepository(db);
  const apiToken = config.pipedrive.apiKey;
  const phones = new PhoneNumbers(config.defaultPhoneRegion);
  const indexRepository = new PersonIndexRepository(db, phones);
  const inbound = new InboundSync(db, new InboundRepository(db), new DeliveriesRepository(db), indexRepository, phones, config.inbound, logger);
  const budgetSettings: BudgetSettings = { reserve: config.pipedrive.dailyTokenReserve, resetHourUtc: config.pipedrive.budgetResetHourUtc };
  const metrics = new Metrics({
    queueDepth: () => mirrorRepository.queueDepth(),
    tokenUse: () => mirrorRepository.tokenUse(budgetDayStart(new Date(), budgetSettings.resetHourUtc)),
  });

  let mirror = overrides.mirror;
  let pipedrive: Services['pipedrive'];
  let startWorker: Services['startWorker'];
  /** Writes the Pipedrive calls leave behind, finished before the pool closes. */
  const pendingWrites: (() => Promise<void>)[] = [];
  if (apiToken && !mirror) {
    const crmHealth = new CrmHealth(mirrorRepository, logger);
    pendingWrites.push(() => crmHealth.flushed());
    const budget = new TokenBudget(mirrorRepository, budgetSettings, logger);
    pendingWrites.push(() => budget.flushed());
    const rateLimits = new SharedRateLimits(new RateLimitsRepository(db), logger, config.pipedrive.rateLimitMarginMs);
    pendingWrites.push(() => rateLimits.flushed());
    const client = new PipedriveClient({
      apiToken,
      baseUrl: config.pipedrive.baseUrl,
      timeoutMs: config.pipedrive.timeoutMs,
      logger,
      rateLimits,
      onOutcome: (outcome, call) => {
        crmHealth.record(outcome);
        budget.record(call.tokenCost, call.tokens);
        metrics.observePipedrive(call.method, call.path, outcome, call.durationMs / 1000);
      },
    });
    mirror = new QueuedMirror(mirrorRepository, crmHealth);
    const index = new PersonIndex(
      indexRepository,
      client,
      { maxAgeMs: config.pipedrive.indexMaxAgeMs, upkeepLeaseMs: config.mirror.leaseMs },
      logger,
      // The refresh takes in changes as webhook deliveries do: a lost webhook delays a change, never loses it.
      (persons, addedSince) => inbound.refreshed(persons, addedSince),
    );
    const runs = new MirrorRuns(
      mirrorRepository,
      client,
      {
        phones,
        maxAttempts: config.mirror.maxAttempts,
        retry: { baseMs: config.mirror.retryBaseMs, maxMs: config.mirror.retryMaxMs },
        budget: budgetSettings,
      },
      logger,
      index,
    );
    pipedrive = { client, index };
    const refreshIntervalMs = config.pipedrive.indexRefreshIntervalMs;
    startWorker = () =>
      startMirrorWorker({
        databaseUrl,
        store: mirrorRepository,
        runs,
        logger,
        concurrency: config.mirror.concurrency,
        pollIntervalMs: config.mirror.pollIntervalMs,
        leaseMs: config.mirror.leaseMs,
        budget: budgetSettings,
        onOutcome: (outcome) => metrics.countMirrorRun(outcome),
        // The index is filled when a key is first configured and kept fresh while no contact is
        // matched; not while the mirror is paused (a spent day, a rate limit, an operator).
        upkeep:
          refreshIntervalMs > 0
            ? { intervalMs: refreshIntervalMs, run: async () => (await mirrorRepository.paused()) || index.ready(false) }
            : undefined,
      });
  }

  const contactService = new ContactService(new ContactRepository(db, mirror !== undefined), { mirror, mirrorWaitMs: config.mirror.waitMs, phones });
  // Waiting stays under the statement timeout, so that a request still waiting answers 409, not 503.
  const idempotency = new IdempotentRequests(
    new IdempotencyKeysRepository(db),
    db,
    { ttlMs: config.idempotencyTtlMs, lockWaitMs: Math.ceil(config.database.queryTimeoutMs / 2) },
    logger,
  );
  const health: HealthChecks = {
    crmConfigured: mirror !== undefined,
    database: () => db.ping().then(
      () => 'up' as const,
      () => 'down' as const,
    ),
    crm: () => mirror?.crmState() ?? Promise.resolve('disabled' as const),
  };
  return {
    prisma,
    health,
    idempotency,
    contactService,
    mirrorRepository,
    budgetSettings,
    metrics,
    startWorker,
    inbound,
    pipedrive,
    webhookRoutes: config.inbound.mode !== 'off' && config.inbound.webhook ? webhookRoutes(inbound, config.inbound.webhook, logger) : [],
    async close() {
      await inbound.close();
      await pipedrive?.client.close();
      // The last calls' token counts and CRM state are written before the pool closes.
      await Promise.all(pendingWrites.map((flushed) => flushed()));
      await database.close();
    },
  };
}

/** The API's routes, in the order they are mounted: the first whose method and path match answers. */
export function apiRoutes(
  services: Pick<Services, 'health' | 'contactService' | 'mirrorRepository' | 'budgetSettings'> & Partial<Pick<Services, 'inbound' | 'webhookRoutes'>>,
): AnyRoute[] {
  // Health first: `/contact/health` must not be taken for `/contact/:id`.
  return [
    ...healthRoutes(services.health),
    ...contactRoutes(services.contactService),
    ...mirrorRoutes(services.mirrorRepository, services.budgetSettings, services.inbound),
    ...(services.webhookRoutes ?? []),
  ];
}

/** The HTTP app over the services, with the configuration's access rules and limits. */
export function buildHttpApp(config: Config, services: Services, logger: Logger): { app: Express; inFlight: InFlightRequests } {
  const inFlight = new InFlightRequests();
  const app = createApp({
    routes: apiRoutes(services),
    metrics: services.metrics,
    idempotency: services.idempotency,
    inFlight,
    logger,
    corsOrigins: config.corsOrigins,
    apiKeys: config.apiKeys,
    rateLimit: config.rateLimit,
    bodyLimit: config.bodyLimit,
  });
  return { app, inFlight };
}
