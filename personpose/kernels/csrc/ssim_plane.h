/* The windowed-SSIM kernel of ssim_cpu.c for one element type, included once per type.
 *
 * Before including, define T (float or double), IT (the integer of T's width), L (lanes in 32
 * bytes: 8 or 4), SUF (a suffix for the names: f32, f64) and ENTRY (the exported name). It
 * defines the vector helpers, plane_sum_SUF (the sum of the valid SSIM map of one plane pair)
 * and ENTRY (pp_ssim_mean's contract). ssim_cpu.c documents the algorithm.
 */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUF)
#define VT FN(vec)

typedef T VT __attribute__((vector_size(32)));
typedef IT FN(ivec) __attribute__((vector_size(32)));
typedef unsigned char FN(bytes) __attribute__((vector_size(L)));

static inline VT FN(ld)(const T *p) { VT v; __builtin_memcpy(&v, p, sizeof v); return v; }
/* L bytes (a 0/1 mask) as L values */
static inline VT FN(ldb)(const unsigned char *p) {
  FN(bytes) b; __builtin_memcpy(&b, p, sizeof b); return __builtin_convertvector(b, VT);
}
static inline void FN(st)(T *p, VT v) { __builtin_memcpy(p, &v, sizeof v); }
static inline VT FN(bc)(T f) { VT v; for (int l = 0; l < L; l++) v[l] = f; return v; }
static inline VT FN(vmin)(VT a, VT b) {
  FN(ivec) m = a < b; return (VT)(((FN(ivec))a & m) | ((FN(ivec))b & ~m));
}
static inline VT FN(vmax)(VT a, VT b) {
  FN(ivec) m = a > b; return (VT)(((FN(ivec))a & m) | ((FN(ivec))b & ~m));
}
static inline double FN(hsum)(VT v) { double s = 0; for (int l = 0; l < L; l++) s += v[l]; return s; }


static inline __attribute__((always_inline)) double FN(plane_sum_k)(
    const T *x, const T *y, const T *m, const unsigned char *mb, int h, int w,
    const T *taps, const int k, T c1, T c2, T *work) {
  const int wo = w - k + 1;
  T *in = work;           /* 4 planes x SSIM_IN */
  T *ring = in + 4 * SSIM_IN; /* k rows x 4 planes x STRIP */
  T tp[MAXK];
  for (int t = 0; t < k; t++) tp[t] = taps[t];
  double total = 0.0;
  for (int c0 = 0; c0 < wo; c0 += STRIP) {
    const int so = wo - c0 < STRIP ? wo - c0 : STRIP; /* outputs of this strip */
    const int sw = so + k - 1;                        /* its inputs */
    const int sp = (so + 2 * L - 1) / (2 * L) * (2 * L);
    const int wv = sw / L * L;
    memset(in, 0, sizeof(T) * 4 * SSIM_IN);
    for (int r = 0; r < h; r++) {
      const T *xr = x + (size_t)r * w + c0, *yr = y + (size_t)r * w + c0;
      const T *mr = m ? m + (size_t)r * w + c0 : NULL;
      const unsigned char *mbr = mb ? mb + (size_t)r * w + c0 : NULL;
      T *q0 = in, *q1 = in + SSIM_IN, *q2 = in + 2 * SSIM_IN, *q3 = in + 3 * SSIM_IN;
      for (int j = 0; j < wv; j += L) {
        VT a = FN(ld)(xr + j), b = FN(ld)(yr + j);
        if (mr) { VT mm = FN(ld)(mr + j); a *= mm; b *= mm; }
        if (mbr) { VT mm = FN(ldb)(mbr + j); a *= mm; b *= mm; }
        FN(st)(q0 + j, a); FN(st)(q1 + j, b); FN(st)(q2 + j, a * a + b * b); FN(st)(q3 + j, a * b);
      }
      for (int j = wv; j < sw; j++) {
        T a = xr[j], b = yr[j];
        if (mr) { a *= mr[j]; b *= mr[j]; }
        if (mbr) { a *= mbr[j]; b *= mbr[j]; }
        q0[j] = a; q1[j] = b; q2[j] = a * a + b * b; q3[j] = a * b;
      }
      /* along the row: two vectors of each plane at once (8 independent sums) */
      T *dst = ring + (size_t)(r % k) * 4 * STRIP;
      for (int j = 0; j < sp; j += 2 * L) {
        VT s0 = FN(bc)(0), s1 = s0, s2 = s0, s3 = s0, u0 = s0, u1 = s0, u2 = s0, u3 = s0;
        for (int t = 0; t < k; t++) {
          const VT tt = FN(bc)(tp[t]);
          const int o = j + t;
          s0 += tt * FN(ld)(q0 + o); s1 += tt * FN(ld)(q1 + o);
          s2 += tt * FN(ld)(q2 + o); s3 += tt * FN(ld)(q3 + o);
          u0 += tt * FN(ld)(q0 + o + L); u1 += tt * FN(ld)(q1 + o + L);
          u2 += tt * FN(ld)(q2 + o + L); u3 += tt * FN(ld)(q3 + o + L);
        }
        FN(st)(dst + j, s0); FN(st)(dst + STRIP + j, s1);
        FN(st)(dst + 2 * STRIP + j, s2); FN(st)(dst + 3 * STRIP + j, s3);
        FN(st)(dst + j + L, u0); FN(st)(dst + STRIP + j + L, u1);
        FN(st)(dst + 2 * STRIP + j + L, u2); FN(st)(dst + 3 * STRIP + j + L, u3);
      }
      if (r < k - 1) continue;
      /* down the column over the ring, then the SSIM value */
      const int i = r - k + 1;
      const T *rp[MAXK];
      for (int t = 0; t < k; t++) rp[t] = ring + (size_t)((i + t) % k) * 4 * STRIP;
      VT rowsum = FN(bc)(0);
      for (int j = 0; j < sp; j += 2 * L) {
        VT mx = FN(bc)(0), my = mx, esq = mx, exy = mx, nx = mx, ny = mx, nsq = mx, nxy = mx;
        for (int t = 0; t < k; t++) {
          const T *s = rp[t] + j;
          const VT tt = FN(bc)(tp[t]);
          mx += tt * FN(ld)(s); my += tt * FN(ld)(s + STRIP);
          esq += tt * FN(ld)(s + 2 * STRIP); exy += tt * FN(ld)(s + 3 * STRIP);
          nx += tt * FN(ld)(s + L); ny += tt * FN(ld)(s + STRIP + L);
          nsq += tt * FN(ld)(s + 2 * STRIP + L); nxy += tt * FN(ld)(s + 3 * STRIP + L);
        }
        for (int half = 0; half < 2; half++) {
          const VT ax = half ? nx : mx, ay = half ? ny : my;
          const VT sq = half ? nsq : esq, xy = half ? nxy : exy;
          const VT mxy = ax * ay, msq = ax * ax + ay * ay;
          const VT a1 = (T)2 * mxy + c1, a2 = msq + c1;
          const VT b1 = (T)2 * (xy - mxy) + c2, b2 = (sq - msq) + c2;
          VT sv = (a1 * b1) / (a2 * b2);
          const int j0 = j + half * L;
          if (j0 + L > so)
            for (int l = 0; l < L; l++)
              if (j0 + l >= so) sv[l] = 0;
          rowsum += sv;
        }
      }
      total += FN(hsum)(rowsum);
    }
  }
  return total;
}

/* the common windows get their own unrolled copies */
static double FN(plane_sum)(const T *x, const T *y, const T *m, const unsigned char *mb,
                        int h, int w, const T *taps, int k, T c1, T c2, T *work) {
  if (k == 11) return FN(plane_sum_k)(x, y, m, mb, h, w, taps, 11, c1, c2, work);
  if (k == 7) return FN(plane_sum_k)(x, y, m, mb, h, w, taps, 7, c1, c2, work);
  return FN(plane_sum_k)(x, y, m, mb, h, w, taps, k, c1, c2, work);
}

/* ------------------------------------------------------------------ pp_ssim_mean */
typedef struct {
  const T *x, *y, *mask;
  const T *taps;
  const unsigned char *mask_u8; /* or the mask as bytes */
  int n, c, h, w, k, range_mode;
  double k1, k2, data_range;
  T *consts; /* (n, 2): C1, C2 */
  double *sums;  /* (n, c) */
} FN(ssim_ctx);

static void FN(range_task)(void *vctx, int i, float *work) {
  (void)work;
  FN(ssim_ctx) *s = (FN(ssim_ctx) *)vctx;
  const size_t plane = (size_t)s->h * s->w;
  double r = s->data_range;
  if (s->range_mode) {
    const T *xi = s->x + (size_t)i * s->c * plane;
    const T *mi = s->mask ? s->mask + (size_t)i * plane : NULL;
    const unsigned char *mbi = s->mask_u8 ? s->mask_u8 + (size_t)i * plane : NULL;
    VT lo = FN(bc)(INFINITY), hi = FN(bc)(-INFINITY);
    T l1 = INFINITY, h1 = -INFINITY;
    const size_t pv = plane / L * L;
    for (int ch = 0; ch < s->c; ch++) {
      const T *xc = xi + ch * plane;
      for (size_t p = 0; p < pv; p += L) {
        VT v = FN(ld)(xc + p);
        if (mi) v *= FN(ld)(mi + p);
        if (mbi) v *= FN(ldb)(mbi + p);
        lo = FN(vmin)(v, lo); hi = FN(vmax)(v, hi);
      }
      for (size_t p = pv; p < plane; p++) {
        T v = xc[p];
        if (mi) v *= mi[p];
        if (mbi) v *= mbi[p];
        l1 = v < l1 ? v : l1; h1 = v > h1 ? v : h1;
      }
    }
    for (int l = 0; l < L; l++) { l1 = lo[l] < l1 ? lo[l] : l1; h1 = hi[l] > h1 ? hi[l] : h1; }
    r = (double)h1 - (double)l1;
  }
  s->consts[2 * i] = (T)((s->k1 * r) * (s->k1 * r));
  s->consts[2 * i + 1] = (T)((s->k2 * r) * (s->k2 * r));
}

static void FN(ssim_task)(void *vctx, int pc, float *work) {
  FN(ssim_ctx) *s = (FN(ssim_ctx) *)vctx;
  const size_t plane = (size_t)s->h * s->w;
  const int i = pc / s->c;
  s->sums[pc] = FN(plane_sum)(s->x + (size_t)pc * plane, s->y + (size_t)pc * plane,
                          s->mask ? s->mask + (size_t)i * plane : NULL,
                          s->mask_u8 ? s->mask_u8 + (size_t)i * plane : NULL, s->h, s->w, s->taps,
                          s->k, s->consts[2 * i], s->consts[2 * i + 1], (T *)work);
}

/* Per-image mean SSIM out[n] of x, y (n, c, h, w) of type T, each times mask (n, 1, h, w) if
 * given (type T, or 0/1 bytes when mask_u8 is 1);
 * C1 = (k1 R)^2, C2 = (k2 R)^2 with R = max - min of the (masked) x of each image when
 * range_mode is 1, else R = data_range. Needs h, w >= k and 1 <= k <= MAXK. */
int ENTRY(const T *x, const T *y, const void *mask, int mask_u8, int n, int c,
                 int h, int w,
                 const T *taps, int k, double k1, double k2, int range_mode,
                 double data_range, double *out, int nthreads) {
  if (k < 1 || k > MAXK || h < k || w < k) return -2;
  FN(ssim_ctx) s = {x, y, mask_u8 ? NULL : (const T *)mask, taps,
                mask_u8 ? (const unsigned char *)mask : NULL, n, c, h, w, k, range_mode, k1, k2,
                data_range, NULL, NULL};
  s.consts = (T *)malloc(sizeof(T) * 2 * (size_t)n);
  s.sums = (double *)malloc(sizeof(double) * (size_t)n * c);
  int rc = (s.consts && s.sums) ? 0 : -1;
  if (rc == 0) rc = run_tasks(FN(range_task), &s, n, 1, nthreads);
  if (rc == 0) rc = run_tasks(FN(ssim_task), &s, n * c, SSIM_WORK * sizeof(T) / sizeof(float), nthreads);
  if (rc == 0) {
    const double count = (double)c * (h - k + 1) * (w - k + 1);
    for (int i = 0; i < n; i++) {
      double t = 0;
      for (int ch = 0; ch < c; ch++) t += s.sums[(size_t)i * c + ch];
      out[i] = t / count;
    }
  }
  free(s.consts);
  free(s.sums);
  return rc;
}


#undef VT
#undef FN
#undef CAT
#undef CAT_
