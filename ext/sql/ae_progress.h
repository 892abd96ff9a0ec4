/*
** Training progress as data, for applications that embed libaesql:
**   - the eponymous table ae_progress lists the trainings running in this
**     process, readable from any connection (a UI thread polls it while a
**     worker's connection trains);
**   - aesql_progress_hook() (include/aesql.h) calls a C function at the end
**     of every epoch of every training on one connection, and can stop it.
*/
#ifndef AE_PROGRESS_H
#define AE_PROGRESS_H

#include "aesql_int.h"

typedef struct aesql_run aesql_run;

/* Registers a training on db; NULL when out of memory (then it runs
** unlisted). zModel and zSource are copied. */
aesql_run *aesql_run_begin(sqlite3 *db, const char *zModel,
                           const char *zSource, int epochs, int batches);
/* A batch (1-based) of an epoch (1-based) is done, with the mean loss of
** the epoch's batches so far. */
void aesql_run_batch(aesql_run *r, int epoch, int batch, double loss);
/* An epoch is done: its loss and val_loss (NAN when nothing is held
** out). Calls the connection's hook: returns non-zero when it asks to
** stop. */
int aesql_run_epoch(aesql_run *r, int epoch, double loss, double valLoss,
                    double seconds);
void aesql_run_end(aesql_run *r);

/* Forgets the hook of a connection that closes. */
void aesql_progress_forget(sqlite3 *db);

/* Registers the ae_progress table on db. */
int aesql_progress_register(sqlite3 *db);

#endif /* AE_PROGRESS_H */
