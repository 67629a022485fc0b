// Types of the one function the page uses from npm `thumbhash` (served as /thumbhash.js by local/web-server.ts).
export function thumbHashToDataURL(hash: ArrayLike<number>): string;
