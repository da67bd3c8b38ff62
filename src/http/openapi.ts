import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

const DESCRIPTION = `The broker keeps the Adobe partner secrets to itself. It holds a fresh access token for each
configured credential and gives it to internal callers that are allowed to use it. Replicas share tokens
through Redis. Callers are answered from memory, so serving a token makes no upstream call and no Redis
round trip.

Every route only answers source addresses inside \`ALLOWED_CIDRS\`. Any other address gets 403.
Routes under \`/v1\` also require a client key (\`Authorization: Bearer <key>\`).

Every error body has the same shape (\`Error\`) and carries \`Cache-Control: no-store\`. A request for a
path or method not listed here gets 404 with the code \`NOT_FOUND\`. Every header documented on an
answer is always sent.
`

// biome-ignore lint/suspicious/noExplicitAny: the document as @fastify/swagger builds it
type Json = Record<string, any>

/**
 * A body schema that accepts null describes an optional body: the broker reads no body, an empty body
 * and `null` alike. @fastify/swagger marks every request body required; this says otherwise.
 */
function optionalBodies(document: Json): Json {
  for (const item of Object.values(document.paths ?? {}) as Json[]) {
    for (const operation of Object.values(item) as Json[]) {
      const body = operation.requestBody
      const schema = body?.content?.['application/json']?.schema
      if (schema?.anyOf?.some((s: Json) => s.type === 'null')) body.required = false
    }
  }
  return document
}

export const openapiOptions = (version: string): FastifyDynamicSwaggerOptions => ({
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'token-broker',
      version,
      summary: 'Fresh Adobe IMS and EQP access tokens for internal services.',
      description: DESCRIPTION,
    },
    servers: [
      { url: 'http://127.0.0.1:8080', description: 'Local default (`npm run demo`; `PORT` overrides)' },
    ],
    tags: [
      { name: 'tokens', description: 'Access tokens for callers' },
      { name: 'credentials', description: 'What a client may use, and how each credential is doing' },
      { name: 'operations', description: 'Liveness, readiness and metrics for orchestrators and monitoring' },
    ],
    components: {
      securitySchemes: {
        clientKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            "The client key from the broker's configuration file (`clients.<name>.key`). Keys are compared " +
            'in constant time. A missing or unknown key gets 401. A known key asking for a credential ' +
            "outside its client's list gets 403.",
        },
      },
    },
  },
  // Shared schemas keep their own names ($id) in components.schemas.
  refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  transformObject: (document) => optionalBodies((document as { openapiObject: Json }).openapiObject),
})

/**
 * Collects the routes' schemas into an OpenAPI document (`fastify.swagger()`). Registered only to
 * write openapi.yaml (`npm run openapi`), never in a serving broker: it would cost start-up and memory.
 */
async function openapi(fastify: FastifyInstance, opts: { version: string }) {
  await fastify.register(swagger, openapiOptions(opts.version))
}

export default fp(openapi, { name: 'openapi' })
