// The client package's types for /client.js, which local/web-server.ts serves from client/dist/index.js
// (the bundle the package ships, built before the page): the page runs on the package as a user's page would.
export * from '../../client/dist/index.js';
