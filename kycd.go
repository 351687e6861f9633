// Package kycd holds what kycd is about: Ralio events as kycd records them,
// the KYC sessions and subjects they project into, the notifications they
// produce, and the Store that keeps them. It imports nothing else of kycd;
// adapters (sqlite, server, ingest, …) translate the outside world into these
// types.
package kycd
