// A Socket.IO 4 server as applications write one: an auth middleware on
// the namespace that admits the token in the CONNECT packet's auth
// payload (socket.handshake.auth.token) and refuses others with its own
// words ("token expired" for tokens named expired-..., as a JWT check
// would say). Usage: node socketio-server.js PORT GOOD_TOKEN
const { Server } = require("socket.io");
const port = Number(process.argv[2]);
const good = process.argv[3];
const io = new Server(port, { transports: ["websocket"], pingInterval: 1000, pingTimeout: 5000 });
const auth = (socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (token === good) return next();
  next(new Error(String(token).startsWith("expired-") ? "token expired" : "not authorized"));
};
io.use(auth);
io.of("/admin").use(auth);
io.on("connection", (socket) => {
  socket.emit("hello", "world");
  socket.on("ping", () => socket.emit("pong"));
});
io.of("/admin").on("connection", (socket) => socket.emit("hello", "admin"));
console.log("listening on " + port);
