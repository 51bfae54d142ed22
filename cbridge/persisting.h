/*
 * persisting's C ABI: the status codes every export returns (or a count,
 * where an export says so). This header is the one definition: the Go
 * exports, the C test and the Python binding (through persisting_status_codes)
 * all take them from here.
 *
 * Errors cross as data: where an export takes `char** err`, a failure stores
 * a malloc'd JSON object there (free it with persisting_free):
 *   {"status": <code>, "kind": "<name>", "message": "<text>",
 *    "path": "<file or directory, if any>", "offset": <byte offset or -1>,
 *    "pid": <holder of a lock, or 0>}
 * persisting_take_error returns the same object for a failed completion.
 */
#ifndef PERSISTING_H
#define PERSISTING_H

#define PERSISTING_OK 0          /* done */
#define PERSISTING_PENDING 1     /* a completion with the caller's token follows */
#define PERSISTING_BUSY 2        /* backpressure: retry after the event fd fires */
#define PERSISTING_WOULD_BLOCK 3 /* a non-blocking read needs the disk */
#define PERSISTING_ERROR (-1)    /* any other failure */
#define PERSISTING_SCHEMA (-2)   /* the batch's schema or names cannot be stored */
#define PERSISTING_WAL (-3)      /* the write-ahead log failed; writes are refused */
#define PERSISTING_CORRUPT (-4)  /* stored data is damaged */
#define PERSISTING_LOCKED (-5)   /* another live bucket holds the directory */
#define PERSISTING_CLOSED (-6)   /* the bucket or handle is closed */
#define PERSISTING_POISONED (-7) /* an internal error poisoned the library */
#define PERSISTING_INVALID (-8)  /* a bad argument or option */
#define PERSISTING_FENCED (-9)   /* a newer owner took the bucket; this one no longer writes */

#endif /* PERSISTING_H */
