/* The part half of the PSSIM loss in C (float32, one image per task): the statistics of the
 * parts and, for the backward pass, their gradient with respect to the images.
 *
 *   pp_part_contract  S[n, k, j] = sum_p M_k(p) P_j(p) and Z[n, k] = sum_p M_k(p), with the
 *                     planes P = x, y, x^2 + y^2, x y (C channels each, in that order) formed
 *                     on the fly: no plane tensor is written, the masks are read once;
 *   pp_part_grad      G_x = sum_k M_k (A_k + x B_k + y C_k) and G_y = sum_k M_k (A'_k + y B_k
 *                     + x C_k) per channel: the parts' gradient, from the per-part
 *                     coefficients (personpose/losses/part_ssim.py), the masks read once;
 *                     written, or added in place to the background's gradient (which then
 *                     need not read a parts' gradient tensor back).
 *
 * Masks are (N, 1 + K, H, W), background first (only 1..K are read). Row sums are float32,
 * accumulated in float64 every FLUSH_ROWS rows.
 */
#include <stddef.h>
#include <string.h>

#include "part_rows.h"
#include "tasks.h"

typedef struct {
  const float *x, *y, *masks;
  int n, c, h, w, parts;
  double *stats, *sums;
  /* gradient */
  const float *coef; /* (n, parts, roles, c) */
  int roles, ia_x, ia_y, ib, ic, accumulate;
  float *gx, *gy;
} part_ctx;

static inline __attribute__((always_inline)) void contract_j(const part_ctx *s, int i,
                                                             const int J, float *work) {
  const int c = s->c, h = s->h, w = s->w, K = s->parts;
  const size_t plane = (size_t)h * w;
  const int wq = (w + L - 1) / L * L;
  const float *x = s->x + (size_t)i * c * plane, *y = s->y + (size_t)i * c * plane;
  const float *parts = s->masks + (size_t)i * (1 + K) * plane + plane;
  double *stats = s->stats + (size_t)i * K * J, *sums = s->sums + (size_t)i * K;
  float *q = work;                       /* J planes of one row, zero-padded to wq */
  float *mrow = q + (size_t)J * wq;      /* the K mask rows, packed and zero-padded */
  v8 *acc = (v8 *)(mrow + (size_t)K * wq); /* K x (J + 1) */
  memset(q, 0, sizeof(float) * ((size_t)J + K) * wq);
  for (int t = 0; t < K * (J + 1); t++) acc[t] = bc(0.f);
  for (int t = 0; t < K * J; t++) stats[t] = 0;
  for (int t = 0; t < K; t++) sums[t] = 0;
  for (int r = 0; r < h; r++) {
    row_planes(x, y, c, plane, r, w, wq, q);
    for (int kk = 0; kk < K; kk++) /* padded copies: the last block reads zeros */
      memcpy(mrow + (size_t)kk * wq, parts + (size_t)kk * plane + (size_t)r * w,
             sizeof(float) * w);
    add_part_rows(mrow, wq, K, J, q, wq, acc);
    if ((r + 1) % FLUSH_ROWS == 0 || r == h - 1) flush_parts(acc, K, J, stats, sums);
  }
}

static void contract_task(void *vctx, int i, float *work) {
  const part_ctx *s = (const part_ctx *)vctx;
  if (s->c == 3) contract_j(s, i, 12, work);
  else contract_j(s, i, 4 * s->c, work);
}

/* stats (n, parts, 4c) and sums (n, parts) float64 of x, y (n, c, h, w) and masks
 * (n, 1 + parts, h, w); returns 0, -1 (out of memory) or -2 (bad sizes) */
int pp_part_contract(const float *x, const float *y, const float *masks, int n, int c, int h,
                     int w, int parts, double *stats, double *sums, int nthreads) {
  if (h < 1 || w < 1 || parts < 1 || 4 * c > MAXJ) return -2;
  part_ctx s = {x, y, masks, n, c, h, w, parts, stats, sums, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL};
  const size_t wq = (size_t)(w + L - 1) / L * L;
  const size_t work = (4 * (size_t)c + parts) * wq + (size_t)parts * (4 * c + 1) * L + L;
  return run_tasks(contract_task, &s, n, work, nthreads);
}

/* gx (and gy) of image i, a block of L columns of one row at a time; the per-part
 * coefficients broadcast once per image into cb[(ch * 4 + role) * K + k] (roles A, A', B, C) */
static inline __attribute__((always_inline)) void grad_image(const part_ctx *s, int i,
                                                              float *work, const int want_x,
                                                              const int want_y, const int acc) {
  const int c = s->c, h = s->h, w = s->w, K = s->parts, R = s->roles;
  const size_t plane = (size_t)h * w;
  const float *x = s->x + (size_t)i * c * plane, *y = s->y + (size_t)i * c * plane;
  const float *parts = s->masks + (size_t)i * (1 + K) * plane + plane;
  const float *coef = s->coef + (size_t)i * K * R * c;
  float *gx = want_x ? s->gx + (size_t)i * c * plane : NULL;
  float *gy = want_y ? s->gy + (size_t)i * c * plane : NULL;
  v8 *cb = (v8 *)work;                           /* c x 4 x K */
  const int wq = (w + L - 1) / L * L;
  float *pk = (float *)(cb + (size_t)c * 4 * K); /* K x wq: this row's masks, packed */
  const int role[4] = {s->ia_x, s->ia_y, s->ib, s->ic};
  for (int ch = 0; ch < c; ch++)
    for (int q = 0; q < 4; q++)
      for (int kk = 0; kk < K; kk++)
        cb[((size_t)ch * 4 + q) * K + kk] =
            bc(role[q] >= 0 ? coef[((size_t)kk * R + role[q]) * c + ch] : 0.f);
  memset(pk, 0, sizeof(float) * K * wq);
  const int wv = w / L * L;
  for (int r = 0; r < h; r++) {
    /* one copy per plane row: the K rows lie a multiple of 4 KiB apart for the usual sizes,
     * and reading them side by side would thrash the L1 cache's sets */
    for (int kk = 0; kk < K; kk++)
      memcpy(pk + (size_t)kk * wq, parts + (size_t)kk * plane + (size_t)r * w, sizeof(float) * w);
    for (int j = 0; j < w; j += L) {
      const int full = j < wv;
      const float *mp = pk + j;
      for (int ch = 0; ch < c; ch++) {
        const v8 *cc = cb + (size_t)ch * 4 * K;
        v8 ga = bc(0.f), gay = ga, gb = ga, gc = ga;
        for (int kk = 0; kk < K; kk++) {
          const v8 mm = ld(mp + (size_t)kk * wq);
          if (want_x) ga += mm * cc[kk];
          if (want_y) gay += mm * cc[K + kk];
          gb += mm * cc[2 * K + kk];
          gc += mm * cc[3 * K + kk];
        }
        const size_t o = ch * plane + (size_t)r * w + j;
        if (full) {
          const v8 xv = ld(x + o), yv = ld(y + o);
          if (want_x) st(gx + o, (acc ? ld(gx + o) : bc(0.f)) + (ga + xv * gb + yv * gc));
          if (want_y) st(gy + o, (acc ? ld(gy + o) : bc(0.f)) + (gay + yv * gb + xv * gc));
        } else {
          for (int l = 0; j + l < w; l++) {
            const float xv = x[o + l], yv = y[o + l];
            if (want_x) gx[o + l] = (acc ? gx[o + l] : 0.f) + (ga[l] + xv * gb[l] + yv * gc[l]);
            if (want_y) gy[o + l] = (acc ? gy[o + l] : 0.f) + (gay[l] + yv * gb[l] + xv * gc[l]);
          }
        }
      }
    }
  }
}

static void grad_task(void *vctx, int i, float *work) {
  const part_ctx *s = (const part_ctx *)vctx;
  const int a = s->accumulate;
  if (s->gx && s->gy) a ? grad_image(s, i, work, 1, 1, 1) : grad_image(s, i, work, 1, 1, 0);
  else if (s->gx) a ? grad_image(s, i, work, 1, 0, 1) : grad_image(s, i, work, 1, 0, 0);
  else a ? grad_image(s, i, work, 0, 1, 1) : grad_image(s, i, work, 0, 1, 0);
}

/* The parts' gradient gx, gy (n, c, h, w) (either may be NULL) from coef (n, parts, roles, c):
 * role ia_x (or -1 without gx) is A, ia_y (or -1 without gy) is A', ib is B, ic is C; written,
 * or with accumulate added to what gx, gy hold. Returns 0, -1 or -2. */
int pp_part_grad(const float *x, const float *y, const float *masks, const float *coef, int n,
                 int c, int h, int w, int parts, int roles, int ia_x, int ia_y, int ib, int ic,
                 float *gx, float *gy, int accumulate, int nthreads) {
  if (h < 1 || w < 1 || parts < 1 || c < 1) return -2;
  if ((gx != NULL) != (ia_x >= 0) || (gy != NULL) != (ia_y >= 0)) return -2;
  if (ia_x >= roles || ia_y >= roles || ib < 0 || ib >= roles || ic < 0 || ic >= roles) return -2;
  part_ctx s = {x, y, masks, n, c, h, w, parts, NULL, NULL, coef, roles, ia_x, ia_y, ib, ic,
                accumulate != 0, gx, gy};
  if (!gx && !gy) return 0;
  const size_t wq = (size_t)(w + L - 1) / L * L;
  return run_tasks(grad_task, &s, n, (size_t)c * 4 * parts * L + parts * wq + L, nthreads);
}
