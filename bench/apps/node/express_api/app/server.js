'use strict';
// Benchmark app: an Express 5 API. Listens on 127.0.0.1:$PORT and logs to the
// file $LOG_FILE through pino's file transport (a worker thread).
const os = require('node:os');
const path = require('node:path');
const express = require('express');
const _ = require('lodash');
const moment = require('moment');
const axios = require('axios');
const pino = require('pino');

// moment loads its locales with an aliased require('./locale/' + name): a
// pruner that drops them makes this silently fall back to English.
moment.locale('fr');

const port = Number(process.env.PORT || 3000);
const logFile = process.env.LOG_FILE || path.join(os.tmpdir(), `bench-express-api-${process.pid}.log`);
const logger = pino(
  { level: 'info', base: { app: 'express_api' } },
  pino.transport({ target: 'pino/file', options: { destination: logFile, mkdir: true } }),
);

const orders = [
  { id: 1, customer: 'alice', total: 30.5, placed: '2024-03-15T09:30:00Z' },
  { id: 2, customer: 'bob', total: 12, placed: '2024-07-01T18:00:00Z' },
  { id: 3, customer: 'alice', total: 7.25, placed: '2024-12-24T12:00:00Z' },
];

// Axios only ever talks to this process: the base URL is our own loopback address.
const self = axios.create({ baseURL: `http://127.0.0.1:${port}`, timeout: 5000 });

const app = express();
app.use(express.json());
app.use((req, _res, next) => {
  logger.info({ method: req.method, url: req.url }, 'request');
  next();
});

app.get('/health', (_req, res) => {
  res.json({ status: 'ok', locale: moment.locale() });
});

app.get('/orders/summary', (_req, res) => {
  const byCustomer = _.mapValues(_.groupBy(orders, 'customer'), (list) => ({
    count: list.length,
    total: _.round(_.sumBy(list, 'total'), 2),
  }));
  res.json({
    customers: _.sortBy(Object.keys(byCustomer)),
    byCustomer,
    largest: _.maxBy(orders, 'total').id,
    months: orders.map((o) => moment.utc(o.placed).format('D MMMM YYYY')),
  });
});

app.post('/orders/chunk', (req, res) => {
  const items = req.body && req.body.items;
  if (!Array.isArray(items)) {
    res.status(400).json({ error: 'items must be an array' });
    return;
  }
  res.json({ chunks: _.chunk(_.uniq(items), 2), camel: _.camelCase('bench express api') });
});

app.get('/date/:iso', (req, res) => {
  const when = moment.utc(req.params.iso, moment.ISO_8601, true);
  if (!when.isValid()) {
    res.status(400).json({ error: 'not an ISO date' });
    return;
  }
  res.json({
    long: when.format('dddd D MMMM YYYY'),
    relative: when.from(moment.utc('2025-01-01T00:00:00Z')),
  });
});

// Calls this server's own /health and /orders/summary through axios.
app.get('/self-check', async (_req, res, next) => {
  try {
    const config = { url: '/orders/summary', params: { via: 'axios' } };
    const [health, summary] = await Promise.all([self.get('/health'), self.request(config)]);
    res.json({
      uri: self.getUri(config),
      health: health.data,
      largest: summary.data.largest,
      contentType: summary.headers['content-type'],
    });
  } catch (err) {
    next(err);
  }
});

app.post('/log', (req, res) => {
  const message = String((req.body && req.body.message) || '');
  logger.warn({ marker: message }, 'client message');
  // flush() asks the worker to write what it has; the check still polls the file.
  logger.flush(() => res.json({ logged: message, file: logFile }));
});

app.use((err, _req, res, _next) => {
  logger.error({ err }, 'request failed');
  res.status(500).json({ error: err.message });
});

const server = app.listen(port, '127.0.0.1', () => {
  logger.info({ port }, 'listening');
});

function shutdown() {
  server.close(() => logger.flush(() => process.exit(0)));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
