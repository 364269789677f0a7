/* PATN's person mask (mask-SSIM, mask-IS) rasterised in C, one image per task.
 *
 * The same float64 arithmetic, in the same order, as the torch rasteriser in
 * personpose/metrics/patn_mask.py (which documents why it equals scikit-image exactly):
 * each limb's rectangle f + n, f - n, t - n, t + n (n its normal scaled to `radius` px) is
 * the intersection of its edges' half-planes; in every row it could touch, its pixels are the
 * columns between the edges' crossings of the row, a crossing within TIE_TOL of a pixel centre
 * being decided by O'Rourke's point-in-polygon test (skimage.draw.polygon's); a disk of
 * `radius` px about every present joint ((dr / radius)^2 + (dc / radius)^2 < 1); then a
 * closing with a `closing` x `closing` square (dilation, then erosion; windows clipped to the
 * image). Floating-point contraction is off here so that every product and sum is rounded as
 * in torch.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "tasks.h"

#ifdef __clang__
#define NO_CONTRACT
#else
#define NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#endif

#define NJ 18          /* joints */
#define TIE_TOL 1e-6   /* px */
#define VERTEX_EPS 1e-12

static inline double sgn(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : (v == 0 ? 0.0 : v)); }
/* torch.maximum / minimum: NaN if either is NaN */
static inline double nmax(double a, double b) { return (isnan(a) || isnan(b)) ? NAN : (a > b ? a : b); }
static inline double nmin(double a, double b) { return (isnan(a) || isnan(b)) ? NAN : (a < b ? a : b); }

/* skimage's point_in_polygon != OUTSIDE for the 4-vertex polygon (yv, xv) and point (y, x) */
NO_CONTRACT static int inside_exact(const double *yv, const double *xv, double y, double x) {
#ifdef __clang__
#pragma clang fp contract(off)
#endif
  int vertex = 0, right = 0, left = 0;
  for (int i = 0; i < 4; i++) {
    const int j = (i + 3) % 4;
    const double x0 = xv[i] - x, y0 = yv[i] - y, x1 = xv[j] - x, y1 = yv[j] - y;
    const double den = y1 - y0;
    const double val = (x0 * y1 - x1 * y0) / (den == 0 ? 1.0 : den);
    vertex |= fabs(x0) < VERTEX_EPS && fabs(y0) < VERTEX_EPS;
    right ^= ((y0 > 0) != (y1 > 0)) && val > 0;
    left ^= ((y0 < 0) != (y1 < 0)) && val < 0;
  }
  return vertex | right | left;
}

/* the inclusive columns [*start, *end] of the polygon in row y (start > end: none) */
NO_CONTRACT static void row_interval(const double *yv, const double *xv, double sigma, double y,
                                     int w, int *start, int *end) {
#ifdef __clang__
#pragma clang fp contract(off)
#endif
  double lo = -INFINITY, hi = INFINITY;
  int row_ok = 1;
  for (int i = 0; i < 4; i++) { /* edge (i - 1, i) */
    const int j = (i + 3) % 4;
    const double b = yv[i] - y, a = yv[j] - y;
    const double den = sigma * (a - b);
    const double num = sigma * (xv[i] * a - xv[j] * b);
    const int flat = (a - b) == 0;
    const double tau = num / (flat ? 1.0 : den);
    lo = nmax(lo, (!flat && den < 0) ? tau : -INFINITY);
    hi = nmin(hi, (!flat && den > 0) ? tau : INFINITY);
    const double flat_sign = sigma * sgn(xv[i] - xv[j]) * sgn(a);
    if (flat && flat_sign < 0) row_ok = 0;
  }
  lo = isnan(lo) ? lo : (lo < -1.0 ? -1.0 : lo);
  hi = isnan(hi) ? hi : (hi > (double)w ? (double)w : hi);
  if (!row_ok || isnan(lo) || isnan(hi)) { *start = w; *end = -1; return; }
  double s = ceil(lo + TIE_TOL), e = floor(hi - TIE_TOL);
  s = s < 0 ? 0 : s;
  e = e > w - 1 ? w - 1 : e;
  const double bounds[2] = {lo, hi};
  double *values[2] = {&s, &e};
  for (int q = 0; q < 2; q++) {
    const double px = nearbyint(bounds[q]); /* torch.round: half to even */
    if (fabs(bounds[q] - px) <= TIE_TOL && px >= 0 && px <= w - 1 && inside_exact(yv, xv, y, px))
      *values[q] = px;
  }
  *start = (int)s;
  *end = (int)e;
}

typedef struct {
  const double *kp; /* (n, 18, 2) */
  const int *limbs; /* (nl, 2) */
  int n, h, w, nl, closing;
  double radius;
  unsigned char *out; /* (n, h, w) */
} mask_ctx;

/* op over t[x - r .. x + r] clipped to [0, w) */
static inline unsigned char clipped_reduce(const unsigned char *t, int w, int x, int r,
                                           int dilate) {
  const int x0 = x - r < 0 ? 0 : x - r, x1 = x + r > w - 1 ? w - 1 : x + r;
  unsigned char v = t[x0];
  for (int xx = x0 + 1; xx <= x1; xx++) v = dilate ? (v | t[xx]) : (v & t[xx]);
  return v;
}

/* separable max (dilation) or min (erosion) of 0/1 bytes over size x size windows clipped to
 * the image (skimage's reflect border gives the same for a square: the clipped part repeats
 * pixels already in the window), through tmp */
static void window_reduce(const unsigned char *in, unsigned char *tmp, unsigned char *out, int h,
                          int w, int size, int dilate) {
  const int r = size / 2;
  for (int y = 0; y < h; y++) { /* down the columns */
    unsigned char *t = tmp + (size_t)y * w;
    const int y0 = y - r < 0 ? 0 : y - r, y1 = y + r > h - 1 ? h - 1 : y + r;
    memcpy(t, in + (size_t)y0 * w, (size_t)w);
    for (int yy = y0 + 1; yy <= y1; yy++) {
      const unsigned char *src = in + (size_t)yy * w;
      if (dilate)
        for (int x = 0; x < w; x++) t[x] |= src[x];
      else
        for (int x = 0; x < w; x++) t[x] &= src[x];
    }
  }
  const int lo_end = r < w ? r : w;                     /* x < lo_end: window clipped left */
  const int hi_start = w - r > lo_end ? w - r : lo_end; /* x >= hi_start: clipped right */
  for (int y = 0; y < h; y++) { /* along the rows */
    const unsigned char *t = tmp + (size_t)y * w;
    unsigned char *o = out + (size_t)y * w;
    for (int x = 0; x < lo_end; x++) o[x] = clipped_reduce(t, w, x, r, dilate);
    if (hi_start > lo_end) { /* the interior, vectorised: o[x] = op over t[x - r .. x + r] */
      memcpy(o + r, t, (size_t)(hi_start - r));
      for (int dx = 1 - r; dx <= r; dx++) {
        if (dilate)
          for (int q = r; q < hi_start; q++) o[q] |= t[q + dx];
        else
          for (int q = r; q < hi_start; q++) o[q] &= t[q + dx];
      }
    }
    for (int x = hi_start; x < w; x++) o[x] = clipped_reduce(t, w, x, r, dilate);
  }
}

NO_CONTRACT static void mask_task(void *vctx, int i, float *work) {
#ifdef __clang__
#pragma clang fp contract(off)
#endif
  mask_ctx *c = (mask_ctx *)vctx;
  const int h = c->h, w = c->w;
  const double *kp = c->kp + (size_t)i * NJ * 2;
  unsigned char *m = (unsigned char *)work, *tmp = m + (size_t)h * w;
  unsigned char *out = c->out + (size_t)i * h * w;
  int present[NJ];
  for (int j = 0; j < NJ; j++) present[j] = kp[2 * j] != -1 && kp[2 * j + 1] != -1;
  memset(m, 0, (size_t)h * w);
  for (int l = 0; l < c->nl; l++) {
    const int a = c->limbs[2 * l], b = c->limbs[2 * l + 1];
    if (!present[a] || !present[b]) continue;
    const double f0 = kp[2 * a], f1 = kp[2 * a + 1], t0 = kp[2 * b], t1 = kp[2 * b + 1];
    const double d0 = f0 - t0, d1 = f1 - t1;
    const double nr = -d1, nc = d0;
    const double length = sqrt(nr * nr + nc * nc);
    if (!(length > 0)) continue;
    const double n0 = c->radius * nr / length, n1 = c->radius * nc / length;
    const double yv[4] = {f0 + n0, f0 - n0, t0 - n0, t0 + n0};
    const double xv[4] = {f1 + n1, f1 - n1, t1 - n1, t1 + n1};
    double area2 = 0;
    for (int q = 0; q < 4; q++) area2 = area2 + (xv[(q + 3) % 4] * yv[q] - xv[q] * yv[(q + 3) % 4]);
    const double sigma = -sgn(area2);
    double ymin = yv[0], ymax = yv[0];
    for (int q = 1; q < 4; q++) { ymin = yv[q] < ymin ? yv[q] : ymin; ymax = yv[q] > ymax ? yv[q] : ymax; }
    double top = floor(ymin) - 1, bottom = ceil(ymax) + 1;
    top = top < 0 ? 0 : (top > h - 1 ? h - 1 : top);
    bottom = bottom < 0 ? 0 : (bottom > h - 1 ? h - 1 : bottom);
    for (int row = (int)top; row <= (int)bottom; row++) {
      int s, e;
      row_interval(yv, xv, sigma, (double)row, w, &s, &e);
      if (s <= e) memset(m + (size_t)row * w + s, 1, (size_t)(e - s + 1));
    }
  }
  const int r = (int)c->radius + 1;
  for (int j = 0; j < NJ; j++) {
    if (!present[j]) continue;
    const double r0 = kp[2 * j], c0 = kp[2 * j + 1];
    const double b0 = floor(r0), b1 = floor(c0);
    for (int oy = -r; oy <= r + 1; oy++)
      for (int ox = -r; ox <= r + 1; ox++) {
        const double yy = b0 + oy, xx = b1 + ox;
        const double u = (yy - r0) / c->radius, v = (xx - c0) / c->radius;
        if (u * u + v * v < 1 && yy >= 0 && yy < h && xx >= 0 && xx < w)
          m[(size_t)yy * w + (size_t)xx] = 1;
      }
  }
  window_reduce(m, tmp, out, h, w, c->closing, 1); /* dilation into out */
  memcpy(m, out, (size_t)h * w);
  window_reduce(m, tmp, out, h, w, c->closing, 0); /* then erosion */
}

/* PATN's mask out (n, h, w) uint8 0/1 from keypoints kp (n, 18, 2) float64 (row, col) px, -1
 * for missing; limbs (nl, 2) joint pairs; returns 0, -1 when memory ran out, -2 for bad sizes. */
int pp_patn_mask(const double *kp, int n, int h, int w, const int *limbs, int nl, double radius,
                 int closing, unsigned char *out, int nthreads) {
  if (h < 1 || w < 1 || closing < 1) return -2;
  mask_ctx c = {kp, limbs, n, h, w, nl, closing, radius, out};
  return run_tasks(mask_task, &c, n, ((size_t)2 * h * w + 3) / 4 + 16, nthreads);
}
