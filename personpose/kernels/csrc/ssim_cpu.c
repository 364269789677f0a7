/* personpose's native CPU kernels for the evaluation's SSIM metrics (forward only).
 *
 * Built at first use by personpose/kernels/native.py (the system C compiler, -O3 and the
 * machine's own vector instructions) and called through ctypes. Entry points:
 *
 *   pp_ssim_mean, pp_ssim_mean_f64
 *                   per-image mean of the valid windowed SSIM map (PATN's ssim / mask-ssim),
 *                   float32 / float64 (the kernel itself: ssim_plane.h);
 *   pp_pssim_parts  PSSIM's background SSIM and part statistics (float32), the part masks
 *                   formed on the fly from their separable row and column terms.
 *
 * Images are planar (N, C, H, W), contiguous. A window is given by its k 1-D taps (k <= 16)
 * and applied separably without padding. Per pixel the four planes x, y, x^2 + y^2 and x y are
 * formed on the fly, filtered along the row into a ring of the last k filtered rows, then down
 * the column, and turned into the SSIM value (population covariance)
 *
 *   S = (2 mx my + C1) (2 (exy - mx my) + C2) / ((mx^2 + my^2 + C1) (exx + eyy - mx^2 - my^2 + C2))
 *
 * which is summed in double per row: no full-size plane is ever written. Planes are processed
 * in strips of STRIP output columns so that the ring (k rows x 4 planes) stays in L1. Lanes are
 * GCC/Clang vector extensions of 32 bytes (8 floats or 4 doubles: AVX2 on x86, two NEON
 * registers on arm64).
 * Work is spread over threads (tasks.h) task by task: a task is one image plane (SSIM) or one
 * image (PSSIM). Every function returns 0, or -1 when memory ran out.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "part_rows.h"
#include "tasks.h"

#define STRIP 64 /* output columns per strip */
#define MAXK 16  /* longest window */

/* ------------------------------------------------------------------ windowed SSIM sum */
#define SSIM_IN (STRIP + MAXK + L) /* padded width of one unfiltered strip row */
#define SSIM_WORK (4 * SSIM_IN + MAXK * 4 * STRIP)

/* the kernel in float32 (pp_ssim_mean) and float64 (pp_ssim_mean_f64) */
#define T float
#define IT int
#define SUF f32
#define ENTRY pp_ssim_mean
#include "ssim_plane.h"
#undef T
#undef IT
#undef SUF
#undef ENTRY
#undef L
#define L 4
#define T double
#define IT long long
#define SUF f64
#define ENTRY pp_ssim_mean_f64
#include "ssim_plane.h"
#undef T
#undef IT
#undef SUF
#undef ENTRY
#undef L
#define L 8

/* ---------------------------------------------------------------- pp_pssim_parts */
/* 2^x, 8 lanes, for x <= ~0: 0 below 2^-126 (and for -inf); relative error ~1e-7 (a degree-7
 * Taylor polynomial of 2^f on [-1/2, 1/2], times 2^n from the exponent bits) */
static inline v8 vexp2(v8 x) {
  x = vmax(x, bc(-127.f));
  const v8 magic = bc(12582912.f); /* 1.5 * 2^23: (x + magic) - magic rounds x to an integer */
  const v8 nf = (x + magic) - magic;
  const v8 f = x - nf;
  v8 p = bc(1.525273380405984e-05f);
  p = p * f + 1.5403530393381606e-04f;
  p = p * f + 1.3333558146428443e-03f;
  p = p * f + 9.618129107628477e-03f;
  p = p * f + 5.550410866482158e-02f;
  p = p * f + 2.402265069591007e-01f;
  p = p * f + 6.931471805599453e-01f;
  p = p * f + 1.0f;
  const v8i n = __builtin_convertvector(nf, v8i);
  const v8i keep = n >= -126;
  const v8 scale = (v8)((n + 127) << 23);
  return (v8)((v8i)(p * scale) & keep);
}

typedef struct {
  const float *x, *y, *taps;
  const float *row_term, *col_term, *q_cross, *dc; /* (n, parts, h) and (n, parts, w) */
  int n, c, h, w, parts, k;
  float c1, c2;
  double *bg, *stats, *mask_sums;
} pssim_ctx;


static inline __attribute__((always_inline)) void pssim_image_j(
    const pssim_ctx *s, int i, const int J, float *work) {
  const int c = s->c, h = s->h, w = s->w, K = s->parts;
  const size_t plane = (size_t)h * w;
  const int wq = (w + L - 1) / L * L;
  const float *x = s->x + (size_t)i * c * plane, *y = s->y + (size_t)i * c * plane;
  const float *rt = s->row_term + (size_t)i * K * h, *qc = s->q_cross + (size_t)i * K * h;
  double *stats = s->stats + (size_t)i * K * J, *sums = s->mask_sums + (size_t)i * K;
  /* scratch: M_0 plane | padded column terms (2 K wq) | M_k rows (K wq) | their max | J planes
   * of one row | sums */
  float *m0 = work;
  float *ct = m0 + (plane + L - 1) / L * L, *dcol = ct + (size_t)K * wq;
  float *mks = dcol + (size_t)K * wq, *mrow = mks + (size_t)K * wq, *q = mrow + wq;
  v8 *acc = (v8 *)(q + (size_t)J * wq); /* K x (J + 1) */
  float *ssim_work = (float *)(acc + (size_t)K * (J + 1));
  for (int kk = 0; kk < K; kk++)
    for (int j = 0; j < wq; j++) { /* padding: M = 2^-inf = 0 */
      const int in = j < w;
      ct[(size_t)kk * wq + j] = in ? s->col_term[((size_t)i * K + kk) * w + j] : -INFINITY;
      dcol[(size_t)kk * wq + j] = in ? s->dc[((size_t)i * K + kk) * w + j] : 0.f;
    }
  memset(q, 0, sizeof(float) * J * wq);
  for (int t = 0; t < K * (J + 1); t++) acc[t] = bc(0.f);
  for (int t = 0; t < K * J; t++) stats[t] = 0;
  for (int t = 0; t < K; t++) sums[t] = 0;
  for (int r = 0; r < h; r++) {
    row_planes(x, y, c, plane, r, w, wq, q);
    /* the masks of this row (one loop: the polynomial's constants stay in registers) */
    for (int j = 0; j < wq; j += L) st(mrow + j, bc(0.f));
    for (int kk = 0; kk < K; kk++) {
      const v8 row = bc(rt[(size_t)kk * h + r]), cross = bc(qc[(size_t)kk * h + r]);
      const float *ck = ct + (size_t)kk * wq, *dk = dcol + (size_t)kk * wq;
      float *mk = mks + (size_t)kk * wq;
      for (int j = 0; j < wq; j += L) {
        const v8 mm = vexp2((row + ld(ck + j)) - cross * ld(dk + j));
        st(mk + j, mm);
        st(mrow + j, vmax(ld(mrow + j), mm));
      }
    }
    add_part_rows(mks, wq, K, J, q, wq, acc); /* their sums with the planes */
    float *m0r = m0 + (size_t)r * w;
    for (int j = 0; j < w; j++) m0r[j] = 1.f - mrow[j];
    if ((r + 1) % FLUSH_ROWS == 0 || r == h - 1) flush_parts(acc, K, J, stats, sums);
  }
  double total = 0;
  for (int ch = 0; ch < c; ch++)
    total += plane_sum_f32(x + ch * plane, y + ch * plane, m0, NULL, h, w, s->taps, s->k,
                           s->c1, s->c2, ssim_work);
  s->bg[i] = total / ((double)c * (h - s->k + 1) * (w - s->k + 1));
}

static void pssim_task(void *vctx, int i, float *work) {
  const pssim_ctx *s = (const pssim_ctx *)vctx;
  if (s->c == 3) pssim_image_j(s, i, 12, work);
  else pssim_image_j(s, i, 4 * s->c, work);
}

/* PSSIM's pieces for x, y (n, c, h, w) and the part masks M_k = 2^(row_term + col_term -
 * q_cross dc) (k = 1..parts; row terms (n, parts, h), column terms (n, parts, w); see
 * personpose.data.pose.part_mask_terms), formed on the fly, with M_0 = 1 - max_k M_k:
 * bg[n] the mean valid windowed SSIM of M_0 x, M_0 y (constants c1, c2); stats[n, parts, 4c]
 * the sums over pixels of M_k times x, y, x^2 + y^2, x y (each c channels, in that order);
 * mask_sums[n, parts] the sums of M_k. Needs h, w >= k, 1 <= k <= MAXK and 4 c <= MAXJ. */
int pp_pssim_parts(const float *x, const float *y, const float *row_term, const float *col_term,
                   const float *q_cross, const float *dc, int n, int c, int h, int w, int parts,
                   const float *taps, int k, float c1, float c2, double *bg, double *stats,
                   double *mask_sums, int nthreads) {
  if (k < 1 || k > MAXK || h < k || w < k || 4 * c > MAXJ || parts < 1) return -2;
  pssim_ctx s = {x, y, taps, row_term, col_term, q_cross, dc, n, c, h, w, parts, k, c1, c2,
                 bg, stats, mask_sums};
  const size_t wq = (size_t)(w + L - 1) / L * L;
  const size_t work = ((size_t)h * w + L) + 3 * parts * wq + wq + 4 * c * wq +
                      (size_t)parts * (4 * c + 1) * L + SSIM_WORK + L;
  return run_tasks(pssim_task, &s, n, work, nthreads);
}
