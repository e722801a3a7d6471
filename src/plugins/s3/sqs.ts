/**
 * Bucket notifications on AWS: the bucket sends its events to an SQS queue (directly, or SNS → SQS) and matchd
 * long-polls it. A message is deleted only once the keys it names are handled (journalled, known already, or gone),
 * so a crash leaves it in the queue to come back after its visibility timeout; events that repeat are harmless (the
 * entity tracking dedupes them). Same abstraction as the HTTP push feed (events.ts). No SQS-compatible server is
 * available to the test suite (none is packaged by Debian): the record parsing is tested with AWS's documented message
 * shapes (test/plugins/s3/events.test.ts); this receive/delete loop is not tested against a queue.
 */
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../../core/log.ts';
import { backoffMs, describe } from './client.ts';
import type { S3Config } from './config.ts';
import { type EventFeed, type ObjectEvent, parseEvents } from './events.ts';

type SqsOptions = NonNullable<NonNullable<S3Config['events']>['sqs']>;

export class SqsEventFeed implements EventFeed {
  private client: SQSClient | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: SqsOptions, private readonly s3: S3Config, private readonly log: Logger) {}

  get describe(): string {
    return `SQS ${this.opts.queueUrl}`;
  }

  async start(handle: (events: ObjectEvent[]) => Promise<void>): Promise<void> {
    const c = this.s3;
    // The queue's own region, else the one in its URL (sqs.<region>.amazonaws.com), else the SDK's chain.
    const region = this.opts.region ?? /sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(this.opts.queueUrl)?.[1];
    this.client = new SQSClient({
      ...(region ? { region } : {}),
      ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
      ...(c.accessKeyId && c.secretAccessKey
        ? { credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) } }
        : {}),
      maxAttempts: 1,
      requestHandler: { requestTimeout: (this.opts.waitSeconds + 10) * 1000 },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    this.loop = this.run(handle);
  }

  private async run(handle: (events: ObjectEvent[]) => Promise<void>): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const r = await this.client!.send(new ReceiveMessageCommand({
          QueueUrl: this.opts.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: this.opts.waitSeconds, VisibilityTimeout: this.opts.visibilityTimeoutSeconds,
        }), { abortSignal: this.abort.signal });
        failures = 0;
        await Promise.all((r.Messages ?? []).map(async (m) => {
          let events: ObjectEvent[];
          try {
            events = parseEvents(JSON.parse(m.Body ?? ''));
          } catch (err) {
            // Not S3 events: left in the queue (its redrive policy, if any, moves it to a dead-letter queue).
            this.log.warn({ messageId: m.MessageId, err: (err as Error).message }, 'an SQS message is not S3 event records; left in the queue');
            return;
          }
          await handle(events);
          await this.client!.send(new DeleteMessageCommand({ QueueUrl: this.opts.queueUrl, ReceiptHandle: m.ReceiptHandle }), { abortSignal: this.abort.signal });
        }));
      } catch (err) {
        if (this.stopped) return;
        failures++;
        const wait = backoffMs(failures, Math.max(1, this.s3.backoff.initialMs), this.s3.backoff.maxMs);
        this.log.warn({ failures, retryInMs: wait }, `receiving from ${this.opts.queueUrl} failed: ${describe(err)}`);
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.loop?.catch(() => {});
    this.client?.destroy();
  }
}
