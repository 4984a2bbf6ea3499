/*
 * curvekeys: ZeroMQ CURVE key files for the remote control channel. A key file holds
 * "public = <Z85>" and "secret = <Z85>" (mode 0600); FILE.pub holds the public key alone; an
 * authorized-keys file lists one Z85 public key per line; a line starting with '#' that is not
 * a key is a comment (Z85 itself uses '#' and '=', so there are no trailing comments).
 */
#ifndef PGFERRY_CURVEKEYS_H
#define PGFERRY_CURVEKEYS_H

#include <stdbool.h>
#include <stddef.h>

#define CURVEKEY_Z85_LEN 40

/* Generates a key pair into path (0600) and path.pub (0644); refuses to overwrite. */
bool curvekeys_generate(const char *path, char *err, size_t errlen);
/* Reads a key file; pub/sec get the Z85 strings (41 bytes each). sec may be NULL. */
bool curvekeys_load(const char *path, char *pub, char *sec, char *err, size_t errlen);
/* Reads a public key: a .pub file, a key file, or the 40-character Z85 text itself. */
bool curvekeys_load_public(const char *path_or_key, char *pub, char *err, size_t errlen);
/* Reads an authorized-keys file into *keys (n × 32-byte binary keys, malloc'd, caller frees). */
bool curvekeys_load_authorized(const char *path, unsigned char **keys, size_t *n, char *err,
                               size_t errlen);

#endif
