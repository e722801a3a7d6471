#!/usr/bin/env node
// A callback receiver for trying matchd out: listens on 127.0.0.1:9000 (PORT to change), verifies every request's
// Standard Webhooks signature with the `standardwebhooks` package and the secret matchd signs with
// (MATCHD_CALLBACK_SECRET, or config/callbacks.yaml's demo default), and prints each verified message as one JSON line.
// A bad or missing signature is answered 400 and reported on stderr; a repeated webhook-id (a retry or a replay) is
// acknowledged and printed once only.
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const secret = process.env.MATCHD_CALLBACK_SECRET || 'whsec_bWF0Y2hkLWRlbW8tc2VjcmV0OiBjaGFuZ2UgbWUgZm9yIHJlYWwgdXNl';
const port = Number(process.env.PORT || 9000);
const wh = new Webhook(secret);
const seen = new Set();

http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c)).on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      try {
        const msg = wh.verify(body, req.headers); // the raw body; throws when the signature is bad or stale
        const id = req.headers['webhook-id'];
        if (!seen.has(id)) {
          seen.add(id);
          process.stdout.write(`${JSON.stringify({ webhookId: id, ...msg })}\n`);
        }
        res.writeHead(204).end();
      } catch (err) {
        process.stderr.write(`rejected ${req.method} ${req.url}: ${err.message}\n`);
        res.writeHead(400).end();
      }
    });
  })
  .listen(port, '127.0.0.1', () => process.stderr.write(`receiving callbacks on http://127.0.0.1:${port}/\n`));
