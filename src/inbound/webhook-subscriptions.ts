/**
 * What the operator commands need to manage Pipedrive's webhook subscriptions (implemented by the
 * Pipedrive adapter, src/crm). The receiver is POST /webhooks/pipedrive.
 */

export interface WebhookSubscription {
  id: number;
  url: string;
  /** create, change, delete or *. */
  action: string;
  /** person, or * for every object. */
  object: string;
  version: string;
  active: boolean;
  /** The Basic user it sends; null when none. */
  user: string | null;
}

export interface NewWebhookSubscription {
  url: string;
  action: 'create' | 'change' | 'delete' | '*';
  object: 'person';
  name: string;
  user: string;
  password: string;
}

export interface WebhookSubscriptions {
  listWebhooks(): Promise<WebhookSubscription[]>;
  createWebhook(subscription: NewWebhookSubscription): Promise<WebhookSubscription>;
  deleteWebhook(id: number): Promise<void>;
}
