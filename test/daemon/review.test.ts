// A person's decision on a review-band job, through the daemon (the web page calls the same method): the file moves
// from the review folder to the chosen band's folder with its companion, the sidecar is rewritten, a `match.reviewed`
// callback is signed and sent with its own webhook-id, the label is journalled; the first decision wins; refusals
// change nothing; and a decision journalled just before a crash is carried out at the next start.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { loadConfig } from '../../src/core/config.ts';
import { decide, labelOf } from '../../src/core/journal-review.ts';
import { Journal } from '../../src/core/journal.ts';
import { planReview } from '../../src/core/review.ts';
import { readPackage } from '../../src/core/model/package.ts';
import { listFiles, waitFor, workspace, type Workspace } from '../fixtures/daemon.ts';
import { cleanupTmpDirs } from '../fixtures/models.ts';
import { samplesDir } from '../fixtures/packages.ts';
import { REVIEW_SAMPLE, dropAndWait, jobsIn, startDaemon, stopDaemons } from '../fixtures/ui.ts';
import { ENDPOINT_SECRET, receiver, type Receiver } from '../fixtures/webhook.ts';

function reviewWorkspace(rx: Receiver): Workspace {
  return workspace({
    callbacks: { endpoints: { crm: { url: rx.url, secret: ENDPOINT_SECRET } } },
    rules: {
      colours: {
        texts: ['a red product'],
        actions: {
          default: [{ move: { to: 'sorted/{band}' } }, { sidecar: {} }, { callback: { endpoint: 'crm' } }],
          error: [{ move: { to: 'sorted/error' } }, { sidecar: {} }],
        },
      },
    },
  });
}

const sidecar = (ws: Workspace, rel: string) => JSON.parse(fs.readFileSync(path.join(ws.sorted, `${rel}.json`), 'utf8'));

describe('review decisions through the daemon', () => {
  const receivers: Receiver[] = [];
  afterEach(async () => {
    await stopDaemons();
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  after(cleanupTmpDirs);

  test('approve: the file and its companion move to adopt, the sidecar is rewritten, match.reviewed is sent, the label is journalled', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const ws = reviewWorkspace(rx);
    const d = await startDaemon(ws);
    fs.writeFileSync(path.join(ws.inbox, 'r1.txt'), 'a red product\n');
    await dropAndWait(ws, d, { 'r1.png': REVIEW_SAMPLE, 'red.jpg': path.join(samplesDir, 'red.jpg') });
    assert.deepEqual(listFiles(path.join(ws.sorted, 'review')), ['r1.png', 'r1.png.json', 'r1.txt']);
    const [id] = jobsIn(d, 'review');
    assert.equal(rx.received.length, 2, 'one match.completed per job so far');

    const r = d.review(id!, { decision: 'approve' }, 'alice');
    assert.ok(r.ok, JSON.stringify(r));
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'adopt', 'r1.png.json')) && rx.received.length === 3, 'the decision carried out');
    assert.deepEqual(listFiles(path.join(ws.sorted, 'review')), [], 'nothing left in review: image, sidecar and companion all moved or removed');
    assert.ok(fs.existsSync(path.join(ws.sorted, 'adopt', 'r1.txt')), 'the companion went along');
    const side = sidecar(ws, 'adopt/r1.png');
    assert.equal(side.outcome, 'adopt');
    assert.equal(side.results[0].band, 'review', 'the scores are what the model said');
    assert.deepEqual({ ...side.review, at: undefined }, { decision: 'approve', band: 'adopt', previous: 'review', reviewer: 'alice', at: undefined });

    const reviewed = rx.received[2]!;
    const msg = new Webhook(ENDPOINT_SECRET).verify(reviewed.body, reviewed.headers as Record<string, string>) as { type: string; data: any };
    assert.equal(msg.type, 'match.reviewed');
    assert.equal(msg.data.outcome, 'adopt');
    assert.equal(msg.data.review.reviewer, 'alice');
    assert.equal(reviewed.headers['webhook-id'], `${rx.received.find((x) => JSON.parse(x.body).data.jobId === String(id))!.headers['webhook-id']}_reviewed`);

    const label = labelOf(d.journalForTools, id!)!;
    assert.equal(label.band, 'adopt');
    assert.equal(label.reviewer, 'alice');
    assert.equal(label.image, path.join(ws.sorted, 'adopt', 'r1.png'), 'the label names where the file is now');
    assert.equal(d.journalForTools.get(id!)!.outcome, 'adopt');
    assert.deepEqual(jobsIn(d, 'review'), []);
  });

  test('two decisions on one job: the first wins, the second is told who decided and nothing moves again', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const ws = reviewWorkspace(rx);
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'r2.png': REVIEW_SAMPLE });
    const [id] = jobsIn(d, 'review');
    const first = d.review(id!, { decision: 'approve' }, 'alice');
    const second = d.review(id!, { decision: 'reject' }, 'bob');
    assert.ok(first.ok);
    assert.ok(!second.ok);
    assert.equal(second.error.code, 'MATCHD_REVIEW_DECIDED');
    assert.match(second.error.message, /already decided by alice .*→ adopt/);
    await waitFor(() => fs.existsSync(path.join(ws.sorted, 'adopt', 'r2.png.json')), 'the first decision carried out');
    await waitFor(() => d.journalForTools.actionsOf(id!).every((a) => a.state === 'done'), 'every action done');
    assert.equal(listFiles(path.join(ws.sorted, 'reject')).length, 0);
    assert.equal(labelOf(d.journalForTools, id!)!.reviewer, 'alice');
  });

  test('refusals change nothing: an unknown job, a job not in review, an unknown band, a review band as the target', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const ws = reviewWorkspace(rx);
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'r3.png': REVIEW_SAMPLE, 'red.jpg': path.join(samplesDir, 'red.jpg') });
    const [review] = jobsIn(d, 'review');
    const [adopt] = jobsIn(d, 'adopt');
    const before = d.journalForTools.sql.prepare('SELECT COUNT(*) AS n FROM outbox').get();
    const cases: [number, Parameters<typeof d.review>[1], string, RegExp][] = [
      [99_999, { decision: 'approve' }, 'MATCHD_REQUEST_INVALID', /no job 99999/],
      [adopt!, { decision: 'reject' }, 'MATCHD_REVIEW_INVALID', /not waiting for review .*in band 'adopt'/],
      [review!, { decision: 'band', band: 'nonsense' }, 'MATCHD_REVIEW_INVALID', /has no band 'nonsense'/],
      [review!, { decision: 'band', band: 'review' }, 'MATCHD_REVIEW_INVALID', /'review' is a review band/],
    ];
    for (const [id, decision, code, message] of cases) {
      const r = d.review(id, decision, 'alice');
      assert.ok(!r.ok);
      assert.equal(r.error.code, code);
      assert.match(r.error.message, message);
    }
    assert.deepEqual(d.journalForTools.sql.prepare('SELECT COUNT(*) AS n FROM outbox').get(), before);
    assert.equal((d.journalForTools.sql.prepare('SELECT COUNT(*) AS n FROM labels').get() as { n: number }).n, 0);
    assert.deepEqual(listFiles(path.join(ws.sorted, 'review')), ['r3.png', 'r3.png.json']);
  });

  test('a decision journalled just before the process died is carried out at the next start, each action once', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const ws = reviewWorkspace(rx);
    const d = await startDaemon(ws);
    await dropAndWait(ws, d, { 'r4.png': REVIEW_SAMPLE });
    const [id] = jobsIn(d, 'review');
    await stopDaemons();
    // What daemon.review commits, committed with no daemon left to act on it (as if it was killed right after).
    const config = loadConfig(ws.configFile);
    const journal = new Journal(path.join(ws.root, 'var/journal.db'));
    const bands = readPackage(path.resolve(ws.root, config.model.dir)).manifest.bands;
    const r = decide(journal, id!, (job, actions) => planReview({ rule: config.rules.colours!, bands, job, actions, decision: { decision: 'reject' }, reviewer: 'carol', at: Date.now(), baseDir: ws.root }), Date.now());
    assert.ok(r.ok);
    journal.close();
    assert.deepEqual(listFiles(path.join(ws.sorted, 'review')), ['r4.png', 'r4.png.json'], 'nothing moved yet');

    const d2 = await startDaemon(ws);
    await waitFor(() => d2.journalForTools.actionsOf(id!).every((a) => a.state === 'done'), 'the decision carried out after the restart');
    assert.deepEqual(listFiles(path.join(ws.sorted, 'reject')), ['r4.png', 'r4.png.json']);
    assert.deepEqual(listFiles(path.join(ws.sorted, 'review')), []);
    assert.equal(sidecar(ws, 'reject/r4.png').review.reviewer, 'carol');
    assert.deepEqual(rx.received.map((x) => JSON.parse(x.body).type), ['match.completed', 'match.reviewed']);
  });
});
