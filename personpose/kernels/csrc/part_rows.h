/* Shared float32 pieces of the part kernels (ssim_cpu.c's PSSIM metric, part_stats_cpu.c's
 * PSSIM loss): 8-lane vector helpers and, one image row at a time, the planes x, y,
 * x^2 + y^2, x y, their mask-weighted sums per part, and the flush of those float32 row sums
 * into float64 totals. */
#ifndef PERSONPOSE_PART_ROWS_H
#define PERSONPOSE_PART_ROWS_H

#include <stddef.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
#define L 8
#define MAXJ 32      /* most planes: 4 C */
#define FLUSH_ROWS 16 /* rows summed in float32 before the float64 totals */

static inline v8 ld(const float *p) { v8 v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, v8 v) { __builtin_memcpy(p, &v, sizeof v); }
static inline v8 bc(float f) { return (v8){f, f, f, f, f, f, f, f}; }
static inline v8 vmax(v8 a, v8 b) { v8i m = a > b; return (v8)(((v8i)a & m) | ((v8i)b & ~m)); }
static inline double hsum(v8 v) { double s = 0; for (int l = 0; l < L; l++) s += v[l]; return s; }

/* row r of the planes of image (x, y) (c, h, w) into q: plane j at q + j wq (wq >= w) */
static inline void row_planes(const float *x, const float *y, int c, size_t plane, int r, int w,
                              int wq, float *q) {
  const int wv = w / L * L;
  for (int ch = 0; ch < c; ch++) {
    const float *xr = x + ch * plane + (size_t)r * w, *yr = y + ch * plane + (size_t)r * w;
    float *qx = q + (size_t)ch * wq, *qy = q + (size_t)(c + ch) * wq;
    float *qs = q + (size_t)(2 * c + ch) * wq, *qp = q + (size_t)(3 * c + ch) * wq;
    for (int j = 0; j < wv; j += L) {
      const v8 a = ld(xr + j), b = ld(yr + j);
      st(qx + j, a); st(qy + j, b); st(qs + j, a * a + b * b); st(qp + j, a * b);
    }
    for (int j = wv; j < w; j++) {
      const float a = xr[j], b = yr[j];
      qx[j] = a; qy[j] = b; qs[j] = a * a + b * b; qp[j] = a * b;
    }
  }
}

/* acc[k (J + 1) + j] += sum over the row of M_k q_j (j < J) and of M_k (j = J), for the K
 * mask rows m + k mstride (zero-padded to wq) and the J planes of q */
static inline __attribute__((always_inline)) void add_part_rows(const float *m, size_t mstride,
                                                                int K, const int J,
                                                                const float *q, int wq,
                                                                v8 *acc) {
  for (int kk = 0; kk < K; kk++) {
    const float *mk = m + (size_t)kk * mstride;
    v8 a[MAXJ + 1];
    for (int jq = 0; jq <= J; jq++) a[jq] = bc(0.f);
    for (int j = 0; j < wq; j += L) { /* the J + 1 sums stay in registers */
      const v8 mm = ld(mk + j);
      a[J] += mm;
      for (int jq = 0; jq < J; jq++) a[jq] += mm * ld(q + (size_t)jq * wq + j);
    }
    v8 *ak = acc + (size_t)kk * (J + 1);
    for (int jq = 0; jq <= J; jq++) ak[jq] += a[jq];
  }
}

/* the float32 sums of acc into stats (K, J) and sums (K), float64; acc back to zero */
static inline void flush_parts(v8 *acc, int K, int J, double *stats, double *sums) {
  for (int kk = 0; kk < K; kk++) {
    v8 *ak = acc + (size_t)kk * (J + 1);
    for (int jq = 0; jq < J; jq++) { stats[kk * J + jq] += hsum(ak[jq]); ak[jq] = bc(0.f); }
    sums[kk] += hsum(ak[J]);
    ak[J] = bc(0.f);
  }
}

#endif
