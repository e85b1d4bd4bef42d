// Whole-sequence CPU kernels for BRF / RF / BHRF / ALIF layers and the LI readout (brf_plugins.kernels._cpu).
//
// The time loop runs here, in C++: one call for the forward over all T steps, one for the backward. The
// elementwise neuron updates mirror brf_plugins/kernels/_torch_cells.py (cell_forward / cell_backward) and
// brf_plugins.functional.alif_step operation for operation and in the same order, so with -ffp-contract=off (no
// a*b+c -> FMA contraction, no -ffast-math) the forward values are bitwise the torch path's in float32 and float64.
// The per-step matmuls go through ATen (at::mm_out: the same call and shapes as the torch path's nnf.linear, so the
// BLAS result is the same). See _cpu.py's module docstring for the design (what is saved, memory per step).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define BRF_HAVE_MXCSR 1
#endif

namespace {

using at::Tensor;

// ---------------------------------------------------------------------------------------------- constants

// The neuron variants, one compiled update each (the BRF divergence_boundary switch only changes pb, which the
// Python side computes).
enum Kind : int {
  BRF_RS = 0,   // refractory + smooth_reset
  BRF_R = 1,    // refractory only
  BRF_S = 2,    // smooth_reset only
  BRF_N = 3,    // neither
  RF_NONE = 4,
  RF_SOFT = 5,
  RF_HARD = 6,
  BHRF_CODE = 7,
  BHRF_PAPER = 8,
  BHRF_EXPLICIT = 9,
  ALIF = 10,
};

// consts (from Python, CellSpec.constants() plus extras), in this order:
//  0 dt, 1 theta, 2 gamma, 3 two_dt, 4 c1, 5 k1, 6 c2, 7 k2, 8 mu (multi-Gaussian shift, 0 for double),
//  9 a9, 10 k10, 11 a11, 12 k12 (smooth forward), 13 multi (0/1), 14 input_gain, 15 beta (ALIF)
template <typename T>
struct Consts {
  T dt, theta, gamma, two_dt, gain, beta;
  T a9, k10, a11, k12, mu;
  bool multi;
  double c1, k1, c2, k2, dmu;   // surrogate derivative (applied through ATen ops on blocks)
  explicit Consts(const std::vector<double>& c) {
    TORCH_CHECK(c.size() >= 16, "brf_cpu: expected 16 constants, got ", c.size());
    dt = static_cast<T>(c[0]);
    theta = static_cast<T>(c[1]);
    gamma = static_cast<T>(c[2]);
    two_dt = static_cast<T>(c[3]);
    c1 = c[4]; k1 = c[5]; c2 = c[6]; k2 = c[7]; dmu = c[8];
    mu = static_cast<T>(c[8]);
    a9 = static_cast<T>(c[9]); k10 = static_cast<T>(c[10]);
    a11 = static_cast<T>(c[11]); k12 = static_cast<T>(c[12]);
    multi = c[13] != 0.0;
    gain = static_cast<T>(c[14]);
    beta = static_cast<T>(c[15]);
  }
};

// Forward spike value: Heaviside (strict > 0), or the smooth antiderivative of the surrogate (gradient checks).
template <typename T, bool SMOOTH>
inline T spike(T x, const Consts<T>& c) {
  if constexpr (!SMOOTH) {
    return x > T(0) ? T(1) : T(0);
  } else {
    const T half = T(0.5), one = T(1);
    const T narrow = half * (one + std::erf(x * c.k10));
    if (c.multi) {
      const T right = half * (one + std::erf((x - c.mu) * c.k12));
      const T left = half * (one + std::erf((x + c.mu) * c.k12));
      return c.a9 * narrow - c.a11 * (right + left);
    }
    return c.a9 * narrow - c.a11 * (half * (one + std::erf(x * c.k12)));
  }
}

// Large buffers for whole-sequence traces. A fresh multi-MB allocation comes from mmap and pays a page fault per
// 4 KiB on first touch (in a VM that costs more than writing the data); ask for transparent huge pages instead
// (one fault per 2 MiB). Measured on the 2-core VM: this beats both plain allocations and a pool of reused
// buffers (re-touching idle pooled memory was several times slower there). BRF_CPU_NOTHP=1 turns it off.
Tensor big_empty(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  Tensor t = at::empty(sizes, opts);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool thp = std::getenv("BRF_CPU_NOTHP") == nullptr;
  const size_t bytes = t.nbytes();
  const size_t huge = size_t(1) << 21;
  if (thp && bytes >= 2 * huge) {
    const uintptr_t start = reinterpret_cast<uintptr_t>(t.data_ptr());
    const uintptr_t first = (start + huge - 1) & ~(huge - 1);
    const uintptr_t last = (start + bytes) & ~(huge - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  return t;
}

// Flush subnormal floats to zero (FTZ + DAZ) for the lifetime of the guard, on this thread. The backward runs
// under it: surrogate derivatives far from threshold and products with them are subnormal, and subnormal
// arithmetic costs ~100 cycles per operation; the gradients change only below 1.2e-38 (float32) / 2.2e-308.
// The forward never uses it (its values stay bitwise the torch path's, subnormals included).
struct FlushDenormals {
#ifdef BRF_HAVE_MXCSR
  unsigned int saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
  ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

inline int64_t grain_rows(int64_t h) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(h, 1)); }

// --------------------------------------------------------------------------------------- resonator cells

// One row (h neurons) of one step: _torch_cells.cell_forward, same operations in the same order.
template <typename T, int K, bool SM>
inline void cell_fwd_row(int64_t h, const Consts<T>& c, const T* __restrict I, const T* __restrict u,
                         const T* __restrict v, const T* __restrict q, const T* __restrict pa,
                         const T* __restrict pb, T* __restrict z, T* __restrict un, T* __restrict vn,
                         T* __restrict qn) {
  const T dt = c.dt, theta = c.theta, gamma = c.gamma, two_dt = c.two_dt, gain = c.gain;
  for (int64_t j = 0; j < h; ++j) {
    const T cur = I[j] * gain;   // exact when gain == 1
    const T uj = u[j], vj = v[j];
    if constexpr (K <= BRF_N) {
      constexpr bool REF = (K == BRF_RS || K == BRF_R);
      constexpr bool SR = (K == BRF_RS || K == BRF_S);
      const T qj = q[j];
      const T b = SR ? pb[j] - qj : pb[j];
      const T w = pa[j];
      // functional.resonator_euler: u + b*u*dt - omega*v*dt + current*dt ; v + omega*u*dt + b*v*dt
      const T u_new = ((uj + (b * uj) * dt) - (w * vj) * dt) + cur * dt;
      const T v_new = (vj + (w * uj) * dt) + (b * vj) * dt;
      const T x = REF ? (u_new - theta) - qj : u_new - theta;
      const T s = spike<T, SM>(x, c);
      z[j] = s;
      un[j] = u_new;
      vn[j] = v_new;
      qn[j] = qj * gamma + s;
    } else if constexpr (K <= RF_HARD) {
      const T b = pb[j], w = pa[j];
      T u_new = ((uj + (b * uj) * dt) - (w * vj) * dt) + cur * dt;
      T v_new = (vj + (w * uj) * dt) + (b * vj) * dt;
      const T x = u_new - theta;
      const T s = spike<T, SM>(x, c);
      if constexpr (K == RF_SOFT) {
        u_new = u_new - s * theta;
        v_new = v_new - s * theta;
      } else if constexpr (K == RF_HARD) {
        u_new = u_new - s * u_new;
        v_new = v_new - s * v_new;
      }
      z[j] = s;
      un[j] = u_new;
      vn[j] = v_new;
    } else {
      constexpr bool PAPER = (K == BHRF_PAPER);
      constexpr bool CODE = (K == BHRF_CODE);
      const T qj = q[j];
      const T b = PAPER ? pb[j] - qj : pb[j] + qj;
      const T v_new = vj + uj * dt;
      const T pos = CODE ? v_new : vj;
      // u + current*dt - b*u*(2dt) - omega^2*position*dt
      const T u_new = ((uj + cur * dt) - (b * uj) * two_dt) - (pa[j] * pos) * dt;
      const T x = (u_new - theta) - qj;
      const T s = spike<T, SM>(x, c);
      z[j] = s;
      un[j] = u_new;
      vn[j] = v_new;
      qn[j] = qj * gamma + s;
    }
  }
}

// The spike argument x of one row of one step, rebuilt from the saved states exactly as the forward computed it.
// u0, v0, q0: the step's input state; u1: its output u (post-reset for RF); I: its current (RF soft/hard only).
template <typename T, int K>
inline void cell_x_row(int64_t h, const Consts<T>& c, const T* __restrict I, const T* __restrict u0,
                       const T* __restrict v0, const T* __restrict q0, const T* __restrict u1,
                       const T* __restrict pa, const T* __restrict pb, T* __restrict x) {
  const T dt = c.dt, theta = c.theta, gain = c.gain;
  for (int64_t j = 0; j < h; ++j) {
    if constexpr (K == BRF_RS || K == BRF_R || K >= BHRF_CODE) {
      x[j] = (u1[j] - theta) - q0[j];
    } else if constexpr (K == BRF_S || K == BRF_N || K == RF_NONE) {
      x[j] = u1[j] - theta;
    } else {   // RF soft / hard: the pre-reset membrane
      const T uj = u0[j], vj = v0[j], b = pb[j], w = pa[j];
      const T u_new = ((uj + (b * uj) * dt) - (w * vj) * dt) + (I[j] * gain) * dt;
      x[j] = u_new - theta;
    }
  }
}

// One row of one backward step: _torch_cells.cell_backward. gz: the spikes' total incoming gradient; gu, gv, gq: in
// (gradients of the step's outputs) and out (of its inputs); gI: the current's gradient; apa, apb: accumulators.
template <typename T, int K>
inline void cell_bwd_row(int64_t h, const Consts<T>& c, const T* __restrict I, const T* __restrict u,
                         const T* __restrict v, const T* __restrict q, const T* __restrict z,
                         const T* __restrict s, const T* __restrict pa, const T* __restrict pb,
                         const T* __restrict gz, T* __restrict gu, T* __restrict gv, T* __restrict gq,
                         T* __restrict gI, T* __restrict apa, T* __restrict apb) {
  const T dt = c.dt, theta = c.theta, gamma = c.gamma, two_dt = c.two_dt, gain = c.gain;
  for (int64_t j = 0; j < h; ++j) {
    const T uj = u[j], vj = v[j], w = pa[j];
    const T g_u = gu[j], g_v = gv[j];
    if constexpr (K <= BRF_N) {
      constexpr bool REF = (K == BRF_RS || K == BRF_R);
      constexpr bool SR = (K == BRF_RS || K == BRF_S);
      const T qj = q[j], g_q = gq[j];
      const T g_x = (gz[j] + g_q) * s[j];
      const T big_u = g_u + g_x;
      const T b = SR ? pb[j] - qj : pb[j];
      const T g_b = (big_u * uj + g_v * vj) * dt;
      const T g_pa = (g_v * uj - big_u * vj) * dt;
      gu[j] = big_u + (big_u * b + g_v * w) * dt;
      gv[j] = g_v + (g_v * b - big_u * w) * dt;
      T g_q_prev = g_q * gamma;
      if constexpr (REF) g_q_prev = g_q_prev - g_x;
      if constexpr (SR) g_q_prev = g_q_prev - g_b;
      gq[j] = g_q_prev;
      gI[j] = (big_u * dt) * gain;
      apa[j] += g_pa;
      apb[j] += g_b;
    } else if constexpr (K <= RF_HARD) {
      const T b = pb[j];
      T g_z = gz[j];
      T big_u = g_u, big_v = g_v;
      if constexpr (K == RF_SOFT) {
        g_z = g_z - (g_u + g_v) * theta;
      } else if constexpr (K == RF_HARD) {
        const T zj = z[j];
        const T u_pre = ((uj + (b * uj) * dt) - (w * vj) * dt) + (I[j] * gain) * dt;
        const T v_pre = (vj + (w * uj) * dt) + (b * vj) * dt;
        big_u = g_u - g_u * zj;
        big_v = g_v - g_v * zj;
        g_z = g_z - (g_u * u_pre + g_v * v_pre);
      }
      big_u = big_u + g_z * s[j];
      const T g_b = (big_u * uj + big_v * vj) * dt;
      const T g_pa = (big_v * uj - big_u * vj) * dt;
      gu[j] = big_u + (big_u * b + big_v * w) * dt;
      gv[j] = big_v + (big_v * b - big_u * w) * dt;
      gI[j] = (big_u * dt) * gain;
      apa[j] += g_pa;
      apb[j] += g_b;
    } else {
      constexpr bool PAPER = (K == BHRF_PAPER);
      constexpr bool CODE = (K == BHRF_CODE);
      const T qj = q[j], g_q = gq[j];
      const T g_x = (gz[j] + g_q) * s[j];
      const T big_u = g_u + g_x;
      const T b = PAPER ? pb[j] - qj : pb[j] + qj;
      const T pos = CODE ? vj + uj * dt : vj;
      const T g_b = -(big_u * uj) * two_dt;
      const T g_pa = -(big_u * pos) * dt;
      const T g_pos = -(big_u * w) * dt;
      if constexpr (CODE) {
        const T g_v_new = g_v + g_pos;
        gu[j] = (big_u - (big_u * b) * two_dt) + g_v_new * dt;
        gv[j] = g_v_new;
      } else {
        gu[j] = (big_u - (big_u * b) * two_dt) + g_v * dt;
        gv[j] = g_v + g_pos;
      }
      gq[j] = (g_q * gamma - g_x) + (PAPER ? -g_b : g_b);
      gI[j] = (big_u * dt) * gain;
      apa[j] += g_pa;
      apb[j] += g_b;
    }
  }
}

// --------------------------------------------------------------------------------------------- ALIF cell

// functional.alif_step: a' = a*rho + z*(1-rho); th = theta + a'*beta; u' = u*alpha + I*(1-alpha);
// z' = H(u' - th); u'' = u' - z'*th. pa = alpha, pb = rho.
template <typename T, bool SM>
inline void alif_fwd_row(int64_t h, const Consts<T>& c, const T* __restrict I, const T* __restrict zp,
                         const T* __restrict u, const T* __restrict a, const T* __restrict alpha,
                         const T* __restrict rho, T* __restrict z, T* __restrict un, T* __restrict an) {
  const T theta = c.theta, beta = c.beta, gain = c.gain, one = T(1);
  for (int64_t j = 0; j < h; ++j) {
    const T cur = I[j] * gain;
    const T r = rho[j], al = alpha[j];
    const T a_new = a[j] * r + zp[j] * (one - r);
    const T th = a_new * beta + theta;
    const T u_new = u[j] * al + cur * (one - al);
    const T s = spike<T, SM>(u_new - th, c);
    z[j] = s;
    un[j] = u_new - s * th;
    an[j] = a_new;
  }
}

template <typename T>
inline void alif_x_row(int64_t h, const Consts<T>& c, const T* __restrict I, const T* __restrict u0,
                       const T* __restrict a1, const T* __restrict alpha, T* __restrict x) {
  const T theta = c.theta, beta = c.beta, gain = c.gain, one = T(1);
  for (int64_t j = 0; j < h; ++j) {
    const T al = alpha[j];
    const T u_new = u0[j] * al + (I[j] * gain) * (one - al);
    x[j] = u_new - (a1[j] * beta + theta);
  }
}

// Backward of one ALIF row (hand-derived; see _cpu.py). gz: total gradient of z_t (loss + recurrence + the next
// step's adaptation); gu, ga in/out; gzp: gradient of z_{t-1} through this step's adaptation (written).
template <typename T>
inline void alif_bwd_row(int64_t h, const Consts<T>& c, const T* __restrict I, const T* __restrict zp,
                         const T* __restrict u0, const T* __restrict a0, const T* __restrict a1,
                         const T* __restrict z, const T* __restrict s, const T* __restrict alpha,
                         const T* __restrict rho, const T* __restrict gz, T* __restrict gu, T* __restrict ga,
                         T* __restrict gI, T* __restrict gzp, T* __restrict apa, T* __restrict apb) {
  const T theta = c.theta, beta = c.beta, gain = c.gain, one = T(1);
  for (int64_t j = 0; j < h; ++j) {
    const T al = alpha[j], r = rho[j];
    const T cur = I[j] * gain;
    const T th = a1[j] * beta + theta;
    const T g_u = gu[j];
    const T g_x = (gz[j] - g_u * th) * s[j];
    const T g_up = g_u + g_x;                 // gradient of u' (pre-reset membrane)
    const T g_th = -(g_u * z[j]) - g_x;       // gradient of the threshold
    const T g_a = ga[j] + g_th * beta;        // gradient of a_t
    gu[j] = g_up * al;
    gI[j] = (g_up * (one - al)) * gain;
    apa[j] += g_up * (u0[j] - cur);
    ga[j] = g_a * r;
    gzp[j] = g_a * (one - r);
    apb[j] += g_a * (a0[j] - zp[j]);
  }
}

// ------------------------------------------------------------------------------------------- surrogates

// s = surrogate'(x) on a whole block (ATen's vectorised exp). tmp1/tmp2: scratch of x's shape. The exponents are
// clamped at `lo` (exp(lo) is still a normal number, about 1e-38 / 1e-307): ATen's vectorised exp drops to a slow
// path for arguments it would underflow, and that can cost more than the rest of the backward.
void surrogate_block(const Tensor& x, Tensor& s, Tensor& tmp1, Tensor& tmp2, double c1, double k1, double c2,
                     double k2, double mu, bool multi) {
  const double lo = x.scalar_type() == at::kFloat ? -87.0 : -707.0;
  if (!multi) {
    at::mul_out(s, x, x);
    at::mul_out(tmp1, s, -k2);
    tmp1.clamp_min_(lo).exp_();
    s.mul_(-k1).clamp_min_(lo).exp_().mul_(c1);
    s.sub_(tmp1, c2);
    return;
  }
  at::sub_out(tmp1, x, mu);
  tmp1.mul_(tmp1).mul_(-k2).clamp_min_(lo).exp_();
  at::add_out(tmp2, x, mu);
  tmp2.mul_(tmp2).mul_(-k2).clamp_min_(lo).exp_();
  tmp1.add_(tmp2);
  at::mul_out(s, x, x);
  s.mul_(-k1).clamp_min_(lo).exp_().mul_(c1);
  s.sub_(tmp1, c2);
}

// ------------------------------------------------------------------------------------------- dispatching

template <bool WITH_SMOOTH, typename F>
void dispatch_kind(int kind, bool smooth, F&& f) {
#define BRF_CASE(KV)                                                     \
  case KV:                                                               \
    if constexpr (WITH_SMOOTH) {                                         \
      if (smooth) f(std::integral_constant<int, KV>{}, std::true_type{}); \
      else f(std::integral_constant<int, KV>{}, std::false_type{});       \
    } else {                                                             \
      f(std::integral_constant<int, KV>{}, std::false_type{});           \
    }                                                                    \
    break;
  switch (kind) {
    BRF_CASE(BRF_RS)
    BRF_CASE(BRF_R)
    BRF_CASE(BRF_S)
    BRF_CASE(BRF_N)
    BRF_CASE(RF_NONE)
    BRF_CASE(RF_SOFT)
    BRF_CASE(RF_HARD)
    BRF_CASE(BHRF_CODE)
    BRF_CASE(BHRF_PAPER)
    BRF_CASE(BHRF_EXPLICIT)
    BRF_CASE(ALIF)
    default:
      TORCH_CHECK(false, "brf_cpu: unknown neuron kind ", kind);
  }
#undef BRF_CASE
}

inline bool has_q(int kind) { return kind != RF_NONE && kind != RF_SOFT && kind != RF_HARD && kind != ALIF; }
// Whether the backward needs the per-step currents (the rest rebuild x from the saved states).
inline bool needs_currents(int kind) { return kind == RF_SOFT || kind == RF_HARD || kind == ALIF; }

template <typename T>
inline const T* ptr(const Tensor& t) { return t.defined() && t.numel() ? t.const_data_ptr<T>() : nullptr; }
template <typename T>
inline T* mptr(Tensor& t) { return t.defined() && t.numel() ? t.mutable_data_ptr<T>() : nullptr; }

// ------------------------------------------------------------------------------------------- sequences
//
// Layout: states are saved as (S, B, h) with slot 0 the initial state and slot t+1 the state after step t when
// `save` (S = T + 1), else two ping-pong slots (S = 2). pa, pb: (h,) (row stride 0) or (B, h) (row stride h).
//
// forward(kind, smooth, consts, currents|None, x|None, weight|None, recurrent, z0, u0, v0, q0, pa, pb, save)
//   feed-forward when `currents` is given (T, B, h); else the recurrent layer I_t = W[x_t; z_{t-1}] (or W x_t).
// Returns [z_all (T,B,h), U (S,B,h), V, Q (or empty), currents (T,B,h) if saved for the backward, else empty].
// The step inputs [x_t; z_{t-1}] are not kept: the weight gradient reads x and z_all directly.

std::vector<Tensor> sequence_forward(int64_t kind, bool smooth, std::vector<double> consts, Tensor currents,
                                     Tensor x, Tensor weight, bool recurrent, Tensor z0, Tensor u0, Tensor v0,
                                     Tensor q0, Tensor pa, Tensor pb, bool save) {
  const bool feed_forward = currents.defined() && currents.numel() > 0;
  const Tensor& lead = feed_forward ? currents : x;
  const int64_t T = lead.size(0), B = lead.size(1);
  const int64_t h = feed_forward ? currents.size(2) : weight.size(0);
  const int64_t m = feed_forward ? 0 : x.size(2);
  const int64_t width = recurrent ? m + h : m;
  const bool q_on = has_q(static_cast<int>(kind));
  const bool alif = kind == ALIF;
  const bool keep_cur = save && !feed_forward && needs_currents(static_cast<int>(kind));
  const int64_t S = save ? T + 1 : 2;
  auto opts = lead.options();

  Tensor z_all = big_empty({T, B, h}, opts);
  Tensor U = big_empty({S, B, h}, opts), V = big_empty({S, B, h}, opts);
  Tensor Q = q_on ? big_empty({S, B, h}, opts) : at::empty({0}, opts);
  U[0].copy_(u0);
  V[0].copy_(v0);   // ALIF: a
  if (q_on) Q[0].copy_(q0);
  Tensor zinit = at::empty({B, h}, opts);
  zinit.copy_(z0);
  // The matmul operands live in fresh (64-byte aligned) buffers like the torch path's cat/linear outputs: MKL's
  // small-matrix results depend on operand alignment, so this keeps float32 currents bitwise the torch path's.
  Tensor scratch, cur_all, cur_buf, wt;
  if (!feed_forward) {
    wt = weight.t();
    if (recurrent) {
      scratch = at::empty({B, width}, opts);
      scratch.narrow(1, m, h).copy_(zinit);
    }
    if (keep_cur) cur_all = big_empty({T, B, h}, opts);
    cur_buf = at::empty({B, h}, opts);
  }
  const int64_t pa_stride = pa.dim() == 2 ? h : 0;
  const int64_t pb_stride = pb.dim() == 2 ? h : 0;

  AT_DISPATCH_FLOATING_TYPES(lead.scalar_type(), "brf_cpu_forward", [&] {
    using T_ = scalar_t;
    const Consts<T_> c(consts);
    const T_* pa_p = pa.const_data_ptr<T_>();
    const T_* pb_p = pb.const_data_ptr<T_>();
    T_* zp = z_all.mutable_data_ptr<T_>();
    T_* Up = U.mutable_data_ptr<T_>();
    T_* Vp = V.mutable_data_ptr<T_>();
    T_* Qp = q_on ? Q.mutable_data_ptr<T_>() : nullptr;
    const T_* z0p = zinit.const_data_ptr<T_>();
    const int64_t BH = B * h;
    auto slot = [&](int64_t t) { return save ? t : (t & 1); };

    dispatch_kind<true>(static_cast<int>(kind), smooth, [&](auto kc, auto sc) {
      constexpr int K = decltype(kc)::value;
      constexpr bool SM = decltype(sc)::value;
      // rows [b0, b1) of step t with current rows I (row stride h)
      auto rows = [&](int64_t t, const T_* I, int64_t b0, int64_t b1, T_* zrec, int64_t zrec_stride) {
        const int64_t s0 = slot(t) * BH, s1 = slot(t + 1) * BH;
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t r = b * h;
          T_* zrow = zp + t * BH + r;
          if constexpr (K == ALIF) {
            const T_* zprev = t == 0 ? z0p + r : zp + (t - 1) * BH + r;
            alif_fwd_row<T_, SM>(h, c, I + r, zprev, Up + s0 + r, Vp + s0 + r, pa_p + b * pa_stride,
                                 pb_p + b * pb_stride, zrow, Up + s1 + r, Vp + s1 + r);
          } else {
            cell_fwd_row<T_, K, SM>(h, c, I + r, Up + s0 + r, Vp + s0 + r, Qp ? Qp + s0 + r : nullptr,
                                    pa_p + b * pa_stride, pb_p + b * pb_stride, zrow, Up + s1 + r, Vp + s1 + r,
                                    Qp ? Qp + s1 + r : nullptr);
          }
          if (zrec) std::memcpy(zrec + b * zrec_stride, zrow, sizeof(T_) * h);
        }
      };
      if (feed_forward) {
        // Rows are independent over the whole sequence: parallel over rows outside the time loop.
        const T_* I = currents.const_data_ptr<T_>();
        at::parallel_for(0, B, std::max<int64_t>(1, grain_rows(h * T)), [&](int64_t b0, int64_t b1) {
          for (int64_t t = 0; t < T; ++t) rows(t, I + t * BH, b0, b1, nullptr, 0);
        });
        return;
      }
      const T_* xp = x.const_data_ptr<T_>();
      T_* sp = recurrent ? scratch.mutable_data_ptr<T_>() : nullptr;
      const T_* I = cur_buf.const_data_ptr<T_>();
      using clk = std::chrono::steady_clock;
      double tmm = 0, tcell = 0;
      for (int64_t t = 0; t < T; ++t) {
        auto p0 = clk::now();
        if (recurrent) {
          // [x_t; z_{t-1}]: z_{t-1} was written by the previous step's update
          const T_* src = xp + t * B * m;
          for (int64_t b = 0; b < B; ++b) std::memcpy(sp + b * width, src + b * m, sizeof(T_) * m);
          at::mm_out(cur_buf, scratch, wt);
        } else {
          at::mm_out(cur_buf, x[t], wt);
        }
        if (keep_cur) std::memcpy(cur_all.mutable_data_ptr<T_>() + t * BH, I, sizeof(T_) * BH);
        auto p1 = clk::now();
        T_* zrec = recurrent ? sp + m : nullptr;
        at::parallel_for(0, B, grain_rows(h), [&](int64_t b0, int64_t b1) { rows(t, I, b0, b1, zrec, width); });
        tmm += std::chrono::duration<double>(p1 - p0).count();
        tcell += std::chrono::duration<double>(clk::now() - p1).count();
      }
      if (std::getenv("BRF_CPU_PROFILE"))
        std::fprintf(stderr, "brf_cpu forward: mm %.1f ms, cells %.1f ms (save=%d)\n", tmm * 1e3, tcell * 1e3,
                     int(save));
    });
  });
  return {z_all, U, V, Q, keep_cur ? cur_all : at::empty({0}, opts)};
}

// backward(kind, consts, z_all, U, V, Q, currents (feed-forward input or saved currents, or empty),
//          x (layer input, or empty), weight (or empty), recurrent, z0, pa,
//          pb, g_z_all (or empty), g_z_last (or empty), g_u, g_v, g_q (zeros where None), need_x, need_w)
// Returns [g_currents (feed-forward) or g_x, g_weight, g_z0, g_u0, g_v0, g_q0, acc_pa (B,h), acc_pb (B,h)]
// (empty tensors where not computed).
std::vector<Tensor> sequence_backward(int64_t kind, std::vector<double> consts, Tensor z_all, Tensor U, Tensor V,
                                      Tensor Q, Tensor currents, Tensor x, Tensor weight,
                                      bool recurrent, Tensor z0, Tensor pa, Tensor pb, Tensor g_z_all,
                                      Tensor g_z_last, Tensor g_u, Tensor g_v, Tensor g_q, bool need_x,
                                      bool need_w) {
  const bool feed_forward = !weight.defined() || weight.numel() == 0;
  const int64_t T = z_all.size(0), B = z_all.size(1), h = z_all.size(2);
  const int64_t m = feed_forward ? 0 : weight.size(1) - (recurrent ? h : 0);
  const bool q_on = has_q(static_cast<int>(kind));
  const bool alif = kind == ALIF;
  const bool has_gz = g_z_all.defined() && g_z_all.numel() > 0;
  const bool has_gzl = g_z_last.defined() && g_z_last.numel() > 0;
  auto opts = z_all.options();
  const int64_t BH = B * h;

  Tensor G = big_empty({T, B, h}, opts);                  // gradient of the currents
  Tensor gu = g_u.clone(), gv = g_v.clone();
  Tensor gq = q_on ? g_q.clone() : at::empty({0}, opts);
  Tensor apa = at::zeros({B, h}, opts), apb = at::zeros({B, h}, opts);
  Tensor gz = at::empty({B, h}, opts);                    // total gradient of this step's spikes
  Tensor gzrec = at::zeros({B, h}, opts);                 // gradient from the next step's recurrence
  Tensor gzad = at::zeros({B, h}, opts);                  // ALIF: from the next step's adaptation
  bool rec_live = has_gzl;                                 // gzrec holds something
  if (has_gzl) gzrec.copy_(g_z_last);
  Tensor w_rec;
  if (!feed_forward && recurrent) w_rec = weight.narrow(1, m, h);
  const int64_t pa_stride = pa.dim() == 2 ? h : 0;
  const int64_t pb_stride = pb.dim() == 2 ? h : 0;
  Tensor zinit = at::empty({B, h}, opts);
  zinit.copy_(z0);

  // Surrogate derivatives in time blocks: x rebuilt for the block, then ATen's vectorised exp over it.
  const int64_t block = std::max<int64_t>(1, std::min<int64_t>(T, (int64_t(1) << 17) / std::max<int64_t>(BH, 1)));
  Tensor xb = at::empty({block, B, h}, opts), sb = at::empty({block, B, h}, opts);
  Tensor t1 = at::empty({block, B, h}, opts), t2 = at::empty({block, B, h}, opts);

  FlushDenormals ftz;
  AT_DISPATCH_FLOATING_TYPES(z_all.scalar_type(), "brf_cpu_backward", [&] {
    using T_ = scalar_t;
    const Consts<T_> c(consts);
    const T_* pa_p = pa.const_data_ptr<T_>();
    const T_* pb_p = pb.const_data_ptr<T_>();
    const T_* zp = z_all.const_data_ptr<T_>();
    const T_* Up = U.const_data_ptr<T_>();
    const T_* Vp = V.const_data_ptr<T_>();
    const T_* Qp = q_on ? Q.const_data_ptr<T_>() : nullptr;
    const T_* Ip = ptr<T_>(currents);
    const T_* gzall = has_gz ? g_z_all.const_data_ptr<T_>() : nullptr;
    const T_* z0p = zinit.const_data_ptr<T_>();
    T_* Gp = G.mutable_data_ptr<T_>();
    T_* gup = gu.mutable_data_ptr<T_>();
    T_* gvp = gv.mutable_data_ptr<T_>();
    T_* gqp = q_on ? gq.mutable_data_ptr<T_>() : nullptr;
    T_* apap = apa.mutable_data_ptr<T_>();
    T_* apbp = apb.mutable_data_ptr<T_>();
    T_* gzp = gz.mutable_data_ptr<T_>();
    T_* gzrecp = gzrec.mutable_data_ptr<T_>();
    T_* gzadp = gzad.mutable_data_ptr<T_>();
    T_* xbp = xb.mutable_data_ptr<T_>();
    const T_* sbp = sb.const_data_ptr<T_>();

    dispatch_kind<false>(static_cast<int>(kind), false, [&](auto kc, auto) {
      constexpr int K = decltype(kc)::value;
      using clk = std::chrono::steady_clock;
      double tx = 0, ts = 0, te = 0, tm = 0;
      auto now = [] { return clk::now(); };
      auto secs = [](clk::time_point a, clk::time_point b) { return std::chrono::duration<double>(b - a).count(); };
      for (int64_t end = T; end > 0; end -= block) {
        auto p0 = now();
        const int64_t start = std::max<int64_t>(0, end - block), n = end - start;
        // x for steps [start, end)
        at::parallel_for(0, n * B, grain_rows(h), [&](int64_t r0, int64_t r1) {
          FlushDenormals worker_ftz;
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t t = start + r / B, b = r % B, o = b * h;
            const T_* I = Ip ? Ip + t * BH + o : nullptr;
            if constexpr (K == ALIF) {
              alif_x_row<T_>(h, c, I, Up + t * BH + o, Vp + (t + 1) * BH + o, pa_p + b * pa_stride,
                             xbp + r * h);
            } else {
              cell_x_row<T_, K>(h, c, I, Up + t * BH + o, Vp + t * BH + o, Qp ? Qp + t * BH + o : nullptr,
                                Up + (t + 1) * BH + o, pa_p + b * pa_stride, pb_p + b * pb_stride, xbp + r * h);
            }
          }
        });
        auto p1 = now();
        Tensor xv = xb.narrow(0, 0, n), sv = sb.narrow(0, 0, n), t1v = t1.narrow(0, 0, n), t2v = t2.narrow(0, 0, n);
        surrogate_block(xv, sv, t1v, t2v, c.c1, c.k1, c.c2, c.k2, c.dmu, c.multi);
        auto p2 = now();
        tx += secs(p0, p1);
        ts += secs(p1, p2);

        auto step_rows = [&](int64_t t, int64_t b0, int64_t b1, bool rec_on) {
          const T_* s_t = sbp + (t - start) * BH;
          for (int64_t b = b0; b < b1; ++b) {
            const int64_t o = b * h, to = t * BH + o;
            T_* g = gzp + o;
            for (int64_t j = 0; j < h; ++j) {
              T_ val = gzall ? gzall[to + j] : T_(0);
              if (rec_on) val = val + gzrecp[o + j];
              if constexpr (K == ALIF) val = val + gzadp[o + j];
              g[j] = val;
            }
            const T_* I = Ip ? Ip + to : nullptr;
            if constexpr (K == ALIF) {
              const T_* zprev = t == 0 ? z0p + o : zp + (t - 1) * BH + o;
              alif_bwd_row<T_>(h, c, I, zprev, Up + to, Vp + to, Vp + to + BH, zp + to, s_t + o,
                               pa_p + b * pa_stride, pb_p + b * pb_stride, g, gup + o, gvp + o, Gp + to,
                               gzadp + o, apap + o, apbp + o);
            } else {
              cell_bwd_row<T_, K>(h, c, I, Up + to, Vp + to, Qp ? Qp + to : nullptr, zp + to, s_t + o,
                                  pa_p + b * pa_stride, pb_p + b * pb_stride, g, gup + o, gvp + o,
                                  gqp ? gqp + o : nullptr, Gp + to, apap + o, apbp + o);
            }
          }
        };
        if (feed_forward) {
          // (the only spike gradient is g_z_all, plus g_z_last at the last step)
          at::parallel_for(0, B, std::max<int64_t>(1, grain_rows(h * n)), [&](int64_t b0, int64_t b1) {
            FlushDenormals worker_ftz;
            for (int64_t t = end - 1; t >= start; --t) step_rows(t, b0, b1, rec_live && t == T - 1);
          });
          continue;
        }
        for (int64_t t = end - 1; t >= start; --t) {
          const bool rec_on = rec_live;
          auto q0 = now();
          at::parallel_for(0, B, grain_rows(h), [&](int64_t b0, int64_t b1) {
            FlushDenormals worker_ftz;
            step_rows(t, b0, b1, rec_on);
          });
          auto q1 = now();
          if (recurrent) {
            at::mm_out(gzrec, G[t], w_rec);
            rec_live = true;
          } else {
            rec_live = false;
          }
          te += secs(q0, q1);
          tm += secs(q1, now());
        }
      }
      if (std::getenv("BRF_CPU_PROFILE"))
        std::fprintf(stderr, "brf_cpu backward: x %.1f ms, surrogate %.1f ms, cells %.1f ms, mm %.1f ms\n",
                     tx * 1e3, ts * 1e3, te * 1e3, tm * 1e3);
    });
  });

  Tensor g_in, g_w, g_z0;
  if (feed_forward) {
    g_in = G;
  } else {
    Tensor Gf = G.view({T * B, h});
    if (need_w) {
      // dW = sum_t g_I_t^T [x_t; z_{t-1}]: the input columns and the recurrent columns as one matmul each
      // (x^T G)^T rather than G^T x: MKL is ~10x slower for the skinny (h x TB)(TB x m) orientation
      Tensor gx_part = at::mm(x.reshape({T * B, m}).t(), Gf).t();
      if (!recurrent) {
        g_w = gx_part.contiguous();
      } else {
        Tensor g_rec = at::mm(G[0].t(), zinit);
        if (T > 1) g_rec.addmm_(G.narrow(0, 1, T - 1).reshape({(T - 1) * B, h}).t(),
                                z_all.narrow(0, 0, T - 1).reshape({(T - 1) * B, h}));
        g_w = at::cat({gx_part, g_rec}, 1);
      }
    }
    if (need_x) g_in = at::mm(Gf, weight.narrow(1, 0, m)).view({T, B, m});
  }
  // z0 feeds the first step's recurrence (and ALIF's first adaptation step).
  if (!feed_forward && recurrent) g_z0 = alif ? gzrec + gzad : gzrec;
  else if (alif) g_z0 = gzad;
  (void)BH;
  Tensor none = at::empty({0}, opts);
  auto d = [&](const Tensor& t) { return t.defined() ? t : none; };
  return {d(g_in), d(g_w), d(g_z0), gu, gv, q_on ? gq : none, apa, apb};
}

// ------------------------------------------------------------------------------------------- single steps
//
// One neuron step as one call forward and one backward (CPUCellStep): for user code that calls a neuron once per
// time step. The per-neuron parameters are computed here from the raw omega and b_offset, with the operations of
// _torch_cells.neuron_params in their order (so they, and with them the step's values, are bitwise the torch
// path's); the backward returns the gradients of the raw omega and b_offset by the chain rule through them.
//
//   BRF:  pa = min(|w|, max_w),  pb = p(pa) - |b'| (divergence boundary) or -|b'|,
//         p(w) = (-1 + sqrt(1 - (dt w)^2)) / dt
//   RF:   pa = |w|,  pb = -|b'|
//   BHRF: pa = |w|^2,  pb = pa (dt/2) + |b'| (code, explicit) or pa (dt/2) - |b'| (paper)

template <typename T>
inline T sgn(T x) { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0)); }

template <typename T>
void step_params(int kind, bool boundary, const Consts<T>& c, double max_w, double half_dt, int64_t h,
                 const T* __restrict w, const T* __restrict b, T* __restrict pa, T* __restrict pb,
                 const at::TensorOptions& opts) {
  const T one = T(1), dt = c.dt, wmax = static_cast<T>(max_w), hdt = static_cast<T>(half_dt);
  if (kind <= BRF_N) {
    for (int64_t j = 0; j < h; ++j) {
      const T wa = std::abs(w[j]);
      pa[j] = std::isnan(wa) ? wa : std::min(wa, wmax);   // torch.clamp(max=): NaN stays NaN
    }
    if (!boundary) {
      for (int64_t j = 0; j < h; ++j) pb[j] = -std::abs(b[j]);
      return;
    }
    // p(w): the square root is ATen's (torch.sqrt's kernel: on some CPUs, e.g. through MKL, it is not the
    // correctly rounded std::sqrt, and the values must be bitwise the torch path's); the rest is IEEE-exact
    Tensor root = at::empty({h}, opts);
    T* r = root.mutable_data_ptr<T>();
    for (int64_t j = 0; j < h; ++j) {
      const T y = dt * pa[j];
      r[j] = one - y * y;
    }
    root.sqrt_();
    for (int64_t j = 0; j < h; ++j) pb[j] = (-one + r[j]) / dt - std::abs(b[j]);
    return;
  }
  for (int64_t j = 0; j < h; ++j) {
    const T wa = std::abs(w[j]), ba = std::abs(b[j]);
    if (kind <= RF_HARD) {
      pa[j] = wa;
      pb[j] = -ba;
    } else {
      const T sq = wa * wa;
      const T bound = sq * hdt;
      pa[j] = sq;
      pb[j] = kind == BHRF_PAPER ? bound - ba : bound + ba;
    }
  }
}

// The kernels read raw rows of h values: a contiguous tensor (no view, whose autograd metadata costs more than
// a small step's arithmetic).
inline Tensor rows_of(const Tensor& t) { return t.contiguous(); }

// step_forward(kind, smooth, consts, boundary, max_w, half_dt, current, u, v, q, omega, b_offset)
//   current, u, v, q: the same shape (..., h) (q empty for RF); omega, b_offset: (h,).
// Returns [z, u', v', q' (empty for RF)], shaped like current.
std::vector<Tensor> step_forward(int64_t kind, bool smooth, std::vector<double> consts, bool boundary, double max_w,
                                 double half_dt, Tensor current, Tensor u, Tensor v, Tensor q, Tensor omega,
                                 Tensor b_offset) {
  const int64_t h = current.size(-1);
  const bool q_on = has_q(static_cast<int>(kind));
  at::AutoDispatchBelowADInplaceOrView below_autograd;   // only fresh tensors are made here
  Tensor I = rows_of(current), U = rows_of(u), V = rows_of(v);
  Tensor Q = q_on ? rows_of(q) : Tensor();
  Tensor w = omega.contiguous(), bo = b_offset.contiguous();
  const int64_t B = h ? I.numel() / h : 0;
  auto opts = I.options();
  Tensor z = at::empty(current.sizes(), opts);
  Tensor un = at::empty(current.sizes(), opts), vn = at::empty(current.sizes(), opts);
  Tensor qn = q_on ? at::empty(current.sizes(), opts) : at::empty({0}, opts);
  AT_DISPATCH_FLOATING_TYPES(I.scalar_type(), "brf_cpu_step_forward", [&] {
    using T_ = scalar_t;
    const Consts<T_> c(consts);
    std::vector<T_> pa(h), pb(h);
    step_params<T_>(static_cast<int>(kind), boundary, c, max_w, half_dt, h, w.const_data_ptr<T_>(),
                    bo.const_data_ptr<T_>(), pa.data(), pb.data(), opts);
    const T_* Ip = I.const_data_ptr<T_>();
    const T_* Up = U.const_data_ptr<T_>();
    const T_* Vp = V.const_data_ptr<T_>();
    const T_* Qp = q_on ? Q.const_data_ptr<T_>() : nullptr;
    T_* zp = z.mutable_data_ptr<T_>();
    T_* unp = un.mutable_data_ptr<T_>();
    T_* vnp = vn.mutable_data_ptr<T_>();
    T_* qnp = q_on ? qn.mutable_data_ptr<T_>() : nullptr;
    dispatch_kind<true>(static_cast<int>(kind), smooth, [&](auto kc, auto sc) {
      constexpr int K = decltype(kc)::value;
      constexpr bool SM = decltype(sc)::value;
      if constexpr (K == ALIF) {
        TORCH_CHECK(false, "brf_cpu: no ALIF single step");
      } else {
        at::parallel_for(0, B, grain_rows(h), [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) {
            const int64_t o = b * h;
            cell_fwd_row<T_, K, SM>(h, c, Ip + o, Up + o, Vp + o, Qp ? Qp + o : nullptr, pa.data(), pb.data(),
                                    zp + o, unp + o, vnp + o, qnp ? qnp + o : nullptr);
          }
        });
      }
    });
  });
  return {z, un, vn, qn};
}

// step_backward(kind, consts, boundary, max_w, half_dt, current, u, v, q, u_new, z, omega, b_offset,
//               g_z, g_u, g_v, g_q, need_params)
//   the step's inputs and its outputs u', z; the gradients of its outputs (empty: zero).
// Returns [g_current, g_u, g_v, g_q (empty for RF), g_omega, g_b_offset (empty unless need_params)].
//   Through the parameters (A_a, A_b: the cell's gradients of pa, pb summed over the rows):
//   BRF:  g_pa = A_a + A_b p'(pa) (boundary on), p'(w) = -dt w / sqrt(1 - (dt w)^2);
//         g_w = g_pa sgn(w) where |w| <= max_w (the clamp passes no gradient above it), g_b' = -A_b sgn(b')
//   RF:   g_w = A_a sgn(w), g_b' = -A_b sgn(b')
//   BHRF: g_w = 2 w (A_a + A_b dt/2), g_b' = +-A_b sgn(b')
std::vector<Tensor> step_backward(int64_t kind, std::vector<double> consts, bool boundary, double max_w,
                                  double half_dt, Tensor current, Tensor u, Tensor v, Tensor q, Tensor u_new,
                                  Tensor z, Tensor omega, Tensor b_offset, Tensor g_z, Tensor g_u, Tensor g_v,
                                  Tensor g_q, bool need_params) {
  const int64_t h = current.size(-1);
  const bool q_on = has_q(static_cast<int>(kind));
  at::AutoDispatchBelowADInplaceOrView below_autograd;   // only fresh tensors are made here
  Tensor I = rows_of(current), U = rows_of(u), V = rows_of(v), U1 = rows_of(u_new);
  Tensor Z = rows_of(z);
  Tensor Q = q_on ? rows_of(q) : Tensor();
  Tensor w = omega.contiguous(), bo = b_offset.contiguous();
  const int64_t B = h ? I.numel() / h : 0;
  auto opts = I.options();
  auto given = [](const Tensor& t) { return t.defined() && t.numel() > 0; };
  // the gradients of the state: fresh buffers, filled row by row with the incoming ones (zeros where none came)
  // and updated in place by cell_bwd_row
  Tensor gu_in = given(g_u) ? rows_of(g_u) : Tensor(), gv_in = given(g_v) ? rows_of(g_v) : Tensor();
  Tensor gq_in = q_on && given(g_q) ? rows_of(g_q) : Tensor();
  const auto shape = current.sizes();
  Tensor gu = at::empty(shape, opts), gv = at::empty(shape, opts);
  Tensor gq = q_on ? at::empty(shape, opts) : at::empty({0}, opts);
  Tensor gz = given(g_z) ? rows_of(g_z) : Tensor();
  Tensor gI = at::empty(shape, opts);
  Tensor g_w, g_b;
  AT_DISPATCH_FLOATING_TYPES(I.scalar_type(), "brf_cpu_step_backward", [&] {
    using T_ = scalar_t;
    const Consts<T_> c(consts);
    std::vector<T_> pa(h), pb(h);
    const T_* wp = w.const_data_ptr<T_>();
    const T_* bp = bo.const_data_ptr<T_>();
    step_params<T_>(static_cast<int>(kind), boundary, c, max_w, half_dt, h, wp, bp, pa.data(), pb.data(), opts);
    FlushDenormals ftz;   // after the parameters: they are the forward's, subnormals included
    const T_* Ip = I.const_data_ptr<T_>();
    const T_* Up = U.const_data_ptr<T_>();
    const T_* Vp = V.const_data_ptr<T_>();
    const T_* U1p = U1.const_data_ptr<T_>();
    const T_* Zp = Z.const_data_ptr<T_>();
    const T_* Qp = q_on ? Q.const_data_ptr<T_>() : nullptr;
    const T_* gzp = gz.defined() ? gz.const_data_ptr<T_>() : nullptr;
    T_* gup = gu.mutable_data_ptr<T_>();
    T_* gvp = gv.mutable_data_ptr<T_>();
    T_* gqp = q_on ? gq.mutable_data_ptr<T_>() : nullptr;
    T_* gIp = gI.mutable_data_ptr<T_>();
    const T_* gu_inp = gu_in.defined() ? gu_in.const_data_ptr<T_>() : nullptr;
    const T_* gv_inp = gv_in.defined() ? gv_in.const_data_ptr<T_>() : nullptr;
    const T_* gq_inp = gq_in.defined() ? gq_in.const_data_ptr<T_>() : nullptr;
    // A_a, A_b: the cell's gradients of pa, pb summed over the rows: one accumulator per parallel chunk, added
    // in the order of the chunks afterwards (the same sums whatever the threads' timing)
    std::map<int64_t, std::pair<std::vector<T_>, std::vector<T_>>> chunk_sums;
    std::mutex sum_lock;
    dispatch_kind<false>(static_cast<int>(kind), false, [&](auto kc, auto) {
      constexpr int K = decltype(kc)::value;
      if constexpr (K == ALIF) {
        TORCH_CHECK(false, "brf_cpu: no ALIF single step");
      } else {
        // the spike arguments rebuilt from the saved states, the surrogate's exponents of all of them in one
        // buffer and one call of ATen's vectorised exp (a dozen ATen calls of surrogate_block cost more than the
        // rest of this backward), clamped at `lo` as there: s = c1 e^{-k1 x^2} - c2 (e^{-k2 x^2} or
        // e^{-k2 (x-mu)^2} + e^{-k2 (x+mu)^2})
        const int64_t BH = B * h, n_exp = c.multi ? 3 : 2;
        const T_ lo = T_(sizeof(T_) == 4 ? -87.0 : -707.0);
        const T_ k1 = static_cast<T_>(c.k1), k2 = static_cast<T_>(c.k2), mu = static_cast<T_>(c.dmu);
        const T_ c1 = static_cast<T_>(c.c1), c2 = static_cast<T_>(c.c2);
        Tensor xs = at::empty({BH}, opts), ex = at::empty({n_exp, BH}, opts), ss = at::empty({BH}, opts);
        T_* xp = xs.mutable_data_ptr<T_>();
        T_* ep = ex.mutable_data_ptr<T_>();
        T_* sq = ss.mutable_data_ptr<T_>();
        for (int64_t b = 0; b < B; ++b) {
          const int64_t o = b * h;
          cell_x_row<T_, K>(h, c, Ip + o, Up + o, Vp + o, Qp ? Qp + o : nullptr, U1p + o, pa.data(), pb.data(),
                            xp + o);
        }
        for (int64_t i = 0; i < BH; ++i) {
          const T_ x = xp[i], x2 = x * x;
          ep[i] = std::max(-k1 * x2, lo);
          if (c.multi) {
            const T_ r = x - mu, l = x + mu;
            ep[BH + i] = std::max(-k2 * (r * r), lo);
            ep[2 * BH + i] = std::max(-k2 * (l * l), lo);
          } else {
            ep[BH + i] = std::max(-k2 * x2, lo);
          }
        }
        ex.exp_();
        for (int64_t i = 0; i < BH; ++i) {
          const T_ tail = c.multi ? ep[BH + i] + ep[2 * BH + i] : ep[BH + i];
          sq[i] = c1 * ep[i] - c2 * tail;
        }
        const T_* sp = ss.const_data_ptr<T_>();
        std::vector<T_> zero_g(gzp ? 0 : h, T_(0));
        auto fill = [h](T_* dst, const T_* src) {
          if (src) std::memcpy(dst, src, sizeof(T_) * h);
          else std::fill(dst, dst + h, T_(0));
        };
        at::parallel_for(0, B, grain_rows(h), [&](int64_t b0, int64_t b1) {
          FlushDenormals worker_ftz;
          std::vector<T_> acc_a(h, T_(0)), acc_b(h, T_(0));
          for (int64_t b = b0; b < b1; ++b) {
            const int64_t o = b * h;
            fill(gup + o, gu_inp ? gu_inp + o : nullptr);
            fill(gvp + o, gv_inp ? gv_inp + o : nullptr);
            if (gqp) fill(gqp + o, gq_inp ? gq_inp + o : nullptr);
            cell_bwd_row<T_, K>(h, c, Ip + o, Up + o, Vp + o, Qp ? Qp + o : nullptr, Zp + o, sp + o, pa.data(),
                                pb.data(), gzp ? gzp + o : zero_g.data(), gup + o, gvp + o, gqp ? gqp + o : nullptr,
                                gIp + o, acc_a.data(), acc_b.data());
          }
          std::lock_guard<std::mutex> guard(sum_lock);
          chunk_sums.emplace(b0, std::make_pair(std::move(acc_a), std::move(acc_b)));
        });
      }
    });
    if (need_params) {
      g_w = at::empty({h}, opts);
      g_b = at::empty({h}, opts);
      T_* gwp = g_w.mutable_data_ptr<T_>();
      T_* gbp = g_b.mutable_data_ptr<T_>();
      const T_ dt = c.dt, one = T_(1), wmax = static_cast<T_>(max_w), hdt = static_cast<T_>(half_dt);
      std::vector<T_> sum_a(h, T_(0)), sum_b(h, T_(0));
      for (const auto& chunk : chunk_sums) {
        for (int64_t j = 0; j < h; ++j) {
          sum_a[j] += chunk.second.first[j];
          sum_b[j] += chunk.second.second[j];
        }
      }
      for (int64_t j = 0; j < h; ++j) {
        const T_ sa = sum_a[j], sb = sum_b[j];
        const T_ wj = wp[j];
        if (kind <= BRF_N) {
          T_ g_pa = sa;
          if (boundary) {
            const T_ y = dt * pa[j];
            g_pa = g_pa - sb * (dt * pa[j]) / std::sqrt(one - y * y);
          }
          gwp[j] = std::abs(wj) <= wmax ? g_pa * sgn(wj) : T_(0);
          gbp[j] = -sb * sgn(bp[j]);
        } else if (kind <= RF_HARD) {
          gwp[j] = sa * sgn(wj);
          gbp[j] = -sb * sgn(bp[j]);
        } else {
          gwp[j] = (sa + sb * hdt) * (T_(2) * wj);
          gbp[j] = (kind == BHRF_PAPER ? -sb : sb) * sgn(bp[j]);
        }
      }
    }
  });
  Tensor none = at::empty({0}, opts);
  return {gI, gu, gv, q_on ? gq : none, g_w.defined() ? g_w : none, g_b.defined() ? g_b : none};
}

// ------------------------------------------------------------------------------------------- LI readout
// o_t = o_{t-1}*alpha + c_t*beta (LISequence). alpha, beta: (C,) (stride 0) or (B, C).
Tensor li_forward(Tensor currents, Tensor o0, Tensor alpha, Tensor beta) {
  const int64_t T = currents.size(0), B = currents.size(1), C = currents.size(2);
  Tensor out = at::empty({T, B, C}, currents.options());
  Tensor init = at::empty({B, C}, currents.options());
  init.copy_(o0);
  const int64_t as = alpha.dim() == 2 ? C : 0, bs = beta.dim() == 2 ? C : 0;
  AT_DISPATCH_FLOATING_TYPES(currents.scalar_type(), "brf_cpu_li_forward", [&] {
    using T_ = scalar_t;
    const T_* cp = currents.const_data_ptr<T_>();
    const T_* ip = init.const_data_ptr<T_>();
    const T_* ap = alpha.const_data_ptr<T_>();
    const T_* bp = beta.const_data_ptr<T_>();
    T_* op = out.mutable_data_ptr<T_>();
    at::parallel_for(0, B, std::max<int64_t>(1, grain_rows(C * T)), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const T_* a = ap + b * as;
        const T_* be = bp + b * bs;
        const T_* prev = ip + b * C;
        for (int64_t t = 0; t < T; ++t) {
          const T_* cur = cp + (t * B + b) * C;
          T_* o = op + (t * B + b) * C;
          for (int64_t j = 0; j < C; ++j) o[j] = prev[j] * a[j] + cur[j] * be[j];
          prev = o;
        }
      }
    });
  });
  return out;
}

// Returns [g_currents, g_o0, acc_alpha (B,C), acc_beta (B,C)].
std::vector<Tensor> li_backward(Tensor g_out, Tensor currents, Tensor out, Tensor o0, Tensor alpha, Tensor beta) {
  FlushDenormals ftz;
  const int64_t T = currents.size(0), B = currents.size(1), C = currents.size(2);
  auto opts = currents.options();
  Tensor gc = at::empty({T, B, C}, opts), go = at::empty({B, C}, opts);
  Tensor aa = at::zeros({B, C}, opts);
  Tensor init = at::empty({B, C}, opts);
  init.copy_(o0);
  const int64_t as = alpha.dim() == 2 ? C : 0, bs = beta.dim() == 2 ? C : 0;
  AT_DISPATCH_FLOATING_TYPES(currents.scalar_type(), "brf_cpu_li_backward", [&] {
    using T_ = scalar_t;
    const T_* g = g_out.const_data_ptr<T_>();
    const T_* cp = currents.const_data_ptr<T_>();
    const T_* op = out.const_data_ptr<T_>();
    const T_* ip = init.const_data_ptr<T_>();
    const T_* ap = alpha.const_data_ptr<T_>();
    const T_* bp = beta.const_data_ptr<T_>();
    T_* gcp = gc.mutable_data_ptr<T_>();
    T_* gop = go.mutable_data_ptr<T_>();
    T_* aap = aa.mutable_data_ptr<T_>();
    at::parallel_for(0, B, std::max<int64_t>(1, grain_rows(C * T)), [&](int64_t b0, int64_t b1) {
      std::vector<T_> state(C, T_(0));
      for (int64_t b = b0; b < b1; ++b) {
        const T_* a = ap + b * as;
        const T_* be = bp + b * bs;
        for (int64_t t = T - 1; t >= 0; --t) {
          const int64_t o = (t * B + b) * C;
          const T_* prev = t > 0 ? op + o - B * C : ip + b * C;
          for (int64_t j = 0; j < C; ++j) {
            const T_ gs = t == T - 1 ? g[o + j] : g[o + j] + state[j] * a[j];
            state[j] = gs;
            gcp[o + j] = gs * be[j];
            // d o_t / d alpha = o_{t-1} - c_t (beta = 1 - alpha): one sum of the small differences keeps
            // float32 precision (two large sums subtracted afterwards lose about ten times more)
            aap[b * C + j] += gs * (prev[j] - cp[o + j]);
          }
        }
        for (int64_t j = 0; j < C; ++j) gop[b * C + j] = state[j] * a[j];
      }
    });
  });
  return {gc, go, aa};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("sequence_forward", &sequence_forward, "BRF/RF/BHRF/ALIF sequence forward (time loop in C++)");
  m.def("sequence_backward", &sequence_backward, "BRF/RF/BHRF/ALIF sequence backward (reverse-time loop in C++)");
  m.def("step_forward", &step_forward, "BRF/RF/BHRF single step forward (per-neuron parameters from raw omega, b')");
  m.def("step_backward", &step_backward, "BRF/RF/BHRF single step backward (gradients of the raw omega, b')");
  m.def("li_forward", &li_forward, "LI readout scan forward");
  m.def("li_backward", &li_backward, "LI readout scan backward");
}
