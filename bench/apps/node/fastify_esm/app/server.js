// Benchmark app: an ESM Fastify 5 app with OpenAPI docs and zod validation.
// Listens on 127.0.0.1:$PORT. The route schemas are zod schemas: zod validates
// the requests and z.toJSONSchema() gives @fastify/swagger the documentation.
import Fastify from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';

const port = Number(process.env.PORT || 3000);

const UserIn = z.object({
  name: z.string().min(1).max(40),
  email: z.email(),
  age: z.number().int().min(0).max(150).optional(),
  tags: z.array(z.string().min(1)).max(5).default([]),
});
const UserParams = z.object({ id: z.coerce.number().int().positive() });

// Route schemas are looked up by "METHOD url httpPart" when fastify compiles them.
const zodSchemas = new Map();
function zodRoute(method, url, parts) {
  const schema = {};
  for (const [part, zodSchema] of Object.entries(parts)) {
    zodSchemas.set(`${method} ${url} ${part}`, zodSchema);
    schema[part] = z.toJSONSchema(zodSchema, { target: 'draft-7', io: 'input' });
  }
  return schema;
}

const app = Fastify({ logger: false });
app.setValidatorCompiler(({ method, url, httpPart }) => {
  const zodSchema = zodSchemas.get(`${method} ${url} ${httpPart}`);
  return (data) => {
    const result = zodSchema.safeParse(data);
    if (result.success) return { value: result.data };
    const error = new Error(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    error.issues = result.error.issues.map((i) => ({ path: i.path.join('.'), code: i.code }));
    return { error };
  };
});
app.setErrorHandler((error, _request, reply) => {
  if (error.code === 'FST_ERR_VALIDATION') {
    reply.code(400).send({ error: 'invalid request', part: error.validationContext, issues: error.issues || [] });
    return;
  }
  reply.code(error.statusCode || 500).send({ error: error.message });
});

await app.register(swagger, {
  openapi: {
    info: { title: 'bench fastify_esm', version: '1.0.0' },
    servers: [{ url: `http://127.0.0.1:${port}` }],
  },
});
await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });

const users = new Map();

app.get('/health', async () => ({ status: 'ok', zod: typeof z.toJSONSchema }));

app.post('/users', { schema: zodRoute('POST', '/users', { body: UserIn }) }, async (request, reply) => {
  const id = users.size + 1;
  const user = { id, ...request.body };
  users.set(id, user);
  reply.code(201);
  return user;
});

app.get('/users/:id', { schema: zodRoute('GET', '/users/:id', { params: UserParams }) }, async (request, reply) => {
  const user = users.get(request.params.id);
  if (!user) {
    reply.code(404);
    return { error: 'user not found' };
  }
  return user;
});

await app.listen({ port, host: '127.0.0.1' });

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
