// Package secret keeps the secrets of teams encrypted at rest and hands their values only
// to the runs that need them.
//
// A value is sealed with AES-256-GCM under one key of a Keyring; the ciphertext carries the
// key's id (KeyID: the first 16 hex digits of the key's SHA-256) so that keys rotate: a new
// key becomes current, Rotate re-seals every secret under it while the old keys stay
// readable, and only then are the old keys dropped. The secret's team, environment and name
// are the GCM additional data, so a ciphertext copied to another scope in the database does
// not open.
//
// Keys come from a key file (one "ID BASE64" line per key, the first one current; created
// with mode 0600 on first start) or from PAVED_SECRET_KEY (base64 keys separated by commas,
// the first one current). The store never sees a value; the API never returns one; Resolve,
// the only way to read one, is audited.
package secret
