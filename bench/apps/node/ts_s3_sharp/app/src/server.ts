// Benchmark app: a TypeScript service (compiled by tsc to dist/) that signs S3
// requests with the AWS SDK v3, resizes images with sharp and hashes passwords
// with bcrypt. Listens on 127.0.0.1:$PORT. Nothing leaves the machine: the S3
// endpoint is http://127.0.0.1:1 and the one request the client "sends" goes to
// an in-process request handler that never opens a socket.
import http from 'node:http';
import { S3Client, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import sharp from 'sharp';
import bcrypt from 'bcrypt';
import { routeImage } from './images';

const port = Number(process.env.PORT || 3000);
const BUCKET = 'bench-bucket';
const SIGNING_DATE = new Date('2024-01-02T03:04:05Z');

interface CapturedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

let lastSent: CapturedRequest | null = null;

// A request handler in place of the SDK's node:http one: records the fully
// serialized and signed request and answers like S3 would, without any I/O.
const offlineHandler = {
  async handle(request: { method: string; path: string; headers: Record<string, string> }) {
    lastSent = { method: request.method, path: request.path, headers: { ...request.headers } };
    return {
      response: {
        statusCode: 200,
        reason: 'OK',
        headers: { etag: '"5d41402abc4b2a76b9719d911017c592"', 'x-amz-version-id': 'v-bench-1' },
        body: undefined,
      },
    };
  },
  updateHttpClientConfig() {},
  httpHandlerConfigs() {
    return {};
  },
};

const s3 = new S3Client({
  region: 'eu-west-3',
  endpoint: 'http://127.0.0.1:1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'AKIDBENCHEXAMPLE', secretAccessKey: 'bench/secret/key' },
  maxAttempts: 1,
  requestHandler: offlineHandler,
});

async function presign(key: string): Promise<object> {
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), {
    expiresIn: 900,
    signingDate: SIGNING_DATE,
  });
  return { url };
}

async function put(key: string, body: string): Promise<object> {
  const out = await s3.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentType: 'text/plain' }),
  );
  const headers = lastSent ? lastSent.headers : {};
  const pick = (name: string) => headers[name] ?? headers[name.toLowerCase()] ?? null;
  return {
    method: lastSent?.method,
    path: lastSent?.path,
    host: pick('host'),
    contentType: pick('content-type'),
    contentLength: pick('content-length'),
    checksumCrc32: pick('x-amz-checksum-crc32'),
    contentSha256: pick('x-amz-content-sha256'),
    authorization: String(pick('authorization') || '').split(' ')[0],
    etag: out.ETag,
    versionId: out.VersionId,
  };
}

async function passwords(password: string): Promise<object> {
  const hash = await bcrypt.hash(password, 4);
  return {
    prefix: hash.slice(0, 7),
    length: hash.length,
    matches: await bcrypt.compare(password, hash),
    wrongMatches: await bcrypt.compare(password + '!', hash),
    // The OpenBSD test vector: bcrypt("U*U", cost 5, salt "CCC...").
    knownVector: bcrypt.compareSync('U*U', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'),
  };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 1 << 20) reject(new Error('body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function route(req: http.IncomingMessage): Promise<[number, object]> {
  const url = new URL(req.url || '/', 'http://127.0.0.1');
  const param = (name: string, fallback: string) => url.searchParams.get(name) ?? fallback;
  switch (`${req.method} ${url.pathname}`) {
    case 'GET /health':
      return [200, { status: 'ok', sharp: sharp.versions.sharp, vips: typeof sharp.versions.vips }];
    case 'GET /s3/presign':
      return [200, await presign(param('key', 'reports/2024.csv'))];
    case 'POST /s3/put':
      return [200, await put(param('key', 'notes/hello.txt'), await readBody(req))];
    case 'GET /image':
      return [200, await routeImage(Number(param('width', '32')), Number(param('height', '24')))];
    case 'POST /password':
      return [200, await passwords(JSON.parse(await readBody(req)).password)];
    default:
      return [404, { error: 'not found' }];
  }
}

const server = http.createServer((req, res) => {
  route(req)
    .catch((err: Error) => [500, { error: err.message }] as [number, object])
    .then(([status, body]) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
});

server.listen(port, '127.0.0.1');
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
