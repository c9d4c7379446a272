// Package web is legacyvm's web console and HTTP API (legacyvm serve): a
// versioned JSON API under /api/v1 described by an OpenAPI 3 document
// (openapi.json, served at /api/v1/openapi.json), server-sent events of
// the engine's typed events (package event), VM screenshots as PNG, a VNC
// relay for noVNC over a websocket, and a page embedded in the binary.
//
// Who may do what is decided by API tokens (tokens.go): a token has a role
// (viewer sees; tester may also reset, revert, snapshot, start, stop, exec and
// use the console; admin may do everything) and may be scoped to profiles
// (a VM of another profile does not exist for it: 404). Tokens are stored
// only as SHA-256 hashes. The page logs in with a token once and then
// holds a session cookie (HttpOnly, SameSite=Strict) and sends a CSRF
// token header with every request that changes something; API clients send
// "Authorization: Bearer <token>". Every action is appended to an audit log
// (audit.go). A token never appears in a URL, a log line or an error.
//
// The server drives the engine through Backend, one small interface
// (backend.go), so that it can move to the orchestrator's profile session
// in one file.
//
// Anything that comes from a guest (screenshots, the VNC stream) is
// untrusted: pictures are decoded with bounded dimensions, the relay copies
// bytes without interpreting them and bounds each websocket message.
package web
