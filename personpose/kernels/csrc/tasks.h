/* A minimal task pool for personpose's native kernels: run_tasks(fn, ctx, ntasks, work, t)
 * calls fn(ctx, task, work) once for every task in [0, ntasks), on up to t threads, each
 * thread with its own 64-byte-aligned scratch buffer of `work` floats. Returns 0, or -1 when
 * no thread could get its buffer.
 *
 * Built with OpenMP (-fopenmp), the threads are OpenMP's: loaded into a Python process that
 * already holds torch, the library resolves libgomp.so.1 to torch's own copy, so these tasks
 * run on torch's thread pool. (Threads of our own would compete for the cores with torch's
 * workers, which spin for a while after each parallel region: on 2 cores that doubled the
 * time of the loss kernels.) Without OpenMP, pthreads are started per call. */
#ifndef PERSONPOSE_TASKS_H
#define PERSONPOSE_TASKS_H

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

#define MAXT 64 /* most threads */

typedef void (*task_fn)(void *ctx, int task, float *work);
typedef struct {
  task_fn fn;
  void *ctx;
  int ntasks;
  int next;
  size_t work_floats;
} pool_t;

static void *worker(void *arg) {
  pool_t *p = (pool_t *)arg;
  void *mem = NULL;
  if (posix_memalign(&mem, 64, p->work_floats * sizeof(float) + 64) != 0) return NULL;
  for (;;) {
    int t = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
    if (t >= p->ntasks) break;
    p->fn(p->ctx, t, (float *)mem);
  }
  free(mem);
  return NULL;
}

/* runs fn on every task (each exactly once) with up to nthreads threads; 0 or -1 */
static int run_tasks(task_fn fn, void *ctx, int ntasks, size_t work_floats, int nthreads) {
  pool_t p = {fn, ctx, ntasks, 0, work_floats};
  if (nthreads < 1) nthreads = 1;
  if (nthreads > ntasks) nthreads = ntasks;
  if (nthreads > MAXT) nthreads = MAXT;
#ifdef _OPENMP
  if (nthreads > 1) {
#pragma omp parallel num_threads(nthreads)
    worker(&p);
  } else {
    worker(&p);
  }
#else
  pthread_t th[MAXT];
  int started = 0;
  for (int i = 1; i < nthreads; i++)
    if (pthread_create(&th[started], NULL, worker, &p) == 0) started++;
  worker(&p); /* this thread works too */
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
#endif
  /* a worker without memory stops at once; any other finishes every task left */
  return p.next >= ntasks ? 0 : -1;
}

#endif
