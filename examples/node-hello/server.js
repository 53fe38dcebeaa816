// Example platform service: answers under CONTEXT_ROOT on PORT.
// express comes from the base image (/home/user/node_modules, via NODE_PATH);
// nanoid is not in the base and is installed under /project/app/node_modules.
'use strict';
const express = require('express');
const { nanoid } = require('nanoid');

const contextRoot = (process.env.CONTEXT_ROOT || '/').replace(/\/+$/, '');
const port = Number(process.env.PORT || 8080);
const app = express();
const router = express.Router();

router.get('/', (_req, res) => {
  res.json({
    service: 'node-hello',
    request: nanoid(8),
    expressFrom: require.resolve('express'),
    nanoidFrom: require.resolve('nanoid'),
  });
});
router.get('/healthz', (_req, res) => res.json({ ok: true }));
app.use(contextRoot || '/', router);

const server = app.listen(port, () => console.log(`node-hello listening on ${port} under ${contextRoot || '/'}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
