// A graphql-ws (graphql-transport-ws) server on ws, as its README sets one
// up, whose onConnect admits the token in connection_init's payload and
// refuses others (graphql-ws closes those with 4403 Forbidden).
// Usage: node graphql-ws-server.js PORT GOOD_TOKEN
const { WebSocketServer } = require("ws");
const { useServer } = require("graphql-ws/use/ws");
const { buildSchema } = require("graphql");
const port = Number(process.argv[2]);
const good = process.argv[3];
const schema = buildSchema("type Query { hello: String }");
const wss = new WebSocketServer({ port, path: "/graphql" });
useServer({
  schema,
  roots: { query: { hello: () => "world" } },
  onConnect: (ctx) => Boolean(ctx.connectionParams && ctx.connectionParams.token === good),
}, wss);
console.log("listening on " + port);
