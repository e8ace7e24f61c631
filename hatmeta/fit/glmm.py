"""Generalised linear mixed models for sparse binary and count data, as metafor's ``rma.glmm``.

Models (maximum likelihood, metafor's parameterisation, ``coding = 1/2``):

- ``UM.FS`` (``GLMM-FS``): fixed study intercepts alpha_i, random log OR (log IRR) u_i ~ N(0, tau^2)
  coded +1/2 in the treatment arm and -1/2 in the control arm:
  logit p_treat = alpha_i + theta + u_i/2, logit p_ctrl = alpha_i - u_i/2 (log of the rate for IRR,
  with log person-time as offset).
- ``UM.RS`` (``GLMM-RS``): random study intercepts, uncorrelated with the random effect:
  logit p_treat = beta0 + v_i + theta + u_i/2, logit p_ctrl = beta0 + v_i - u_i/2,
  v_i ~ N(0, sigma^2) (metafor: ``cor = FALSE``).
- ``CM.EL`` (``GLMM-EXACT``): the exact conditional model; given the total events of a study the
  treatment-arm events follow Fisher's non-central hypergeometric distribution with log odds ratio
  theta + u_i (OR), or a binomial with logit theta + u_i + log(t_treat / t_ctrl) (IRR).

Sources: Stijnen, Hamza & Ozdemir (2010), Stat Med 29:3046-67; van Houwelingen, Zwinderman & Stijnen
(1993), Stat Med 12:2273-84; Jackson, Law, Stijnen, Viechtbauer & White (2018), Stat Med 37:1059-85.

How the integrals are computed: each study's marginal likelihood is an integral over its standard
normal random effects z (u = tau z, v = sigma z). The integrand is log-concave, so adaptive
Gauss-Hermite quadrature (Liu & Pierce 1994) centred at its mode with the curvature there as scale
is accurate to near machine precision with 24 nodes per dimension (checked against R's
``integrate()`` in tests/fixtures/glmm). The non-central hypergeometric likelihood is summed exactly
over its support. Gradients and Hessians of the log likelihood are exact posterior moments over the
quadrature nodes, so the fit is a Newton iteration. tau (and sigma) enter as real numbers whose
square is the variance, so tau^2 = 0 is an ordinary point and not a constraint; before the joint
Newton fit tau is bracketed on a profile grid so that a boundary or a distant maximum is not missed.

Studies with no events (or only events) in both arms are dropped as metafor's ``drop00 = TRUE`` does
(they carry no information on theta under UM.FS and CM.EL; under UM.RS only on the baseline risk),
and named. All estimates are on the log scale (log OR, log IRR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from ..results import MetaResult
    from .effects import EffectSizes

MODELS = {"GLMM-FS": "UM.FS", "GLMM-RS": "UM.RS", "GLMM-EXACT": "CM.EL"}
NODES = 24  # Gauss-Hermite nodes per dimension (1-D models); 2-D models use NODES_2D^2
NODES_2D = 16
COARSE_GRID = (0.0, 0.3, 1.0, 3.0, 10.0)  # profile fits at fixed theta (separated data)
SCALE_MAX = 10.0  # cap on tau and sigma (log scale): tau^2 = 100 means no finite maximum (see notes)
TAU_GRID = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0)
LOG2PI = math.log(2 * math.pi)


# ------------------------------------------------------------------ kernels: log f(eta) and derivatives

def _binom(eta, x, n):
    """Binomial log likelihood in logit eta (constant included), d/deta, d2/deta2."""
    # log(1 + e^eta) stably
    sp = np.logaddexp(0.0, eta)
    p = np.exp(eta - sp)
    return x * eta - n * sp, x - n * p, -n * p * (1 - p)


def _pois(eta, x, n):
    """Poisson log likelihood in log mean eta (offset inside eta), d/deta, d2/deta2."""
    mu = np.exp(eta)
    return x * eta - mu, x - mu, -mu


class _Hyper:
    """Fisher's non-central hypergeometric log likelihood of the observed treatment events in the
    log odds ratio psi, summed over the support exactly (padded to a common length)."""

    def __init__(self, x, n1, n2, m) -> None:
        from scipy.special import gammaln

        lo = np.maximum(0, m - n2)
        hi = np.minimum(n1, m)
        width = int((hi - lo).max()) + 1
        y = lo[:, None] + np.arange(width)[None, :]
        ok = y <= hi[:, None]
        yc = np.where(ok, y, lo[:, None])

        def lchoose(a, b):
            return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

        lw = lchoose(n1[:, None], yc) + lchoose(n2[:, None], m[:, None] - yc)
        self.lw = np.where(ok, lw, -np.inf)  # (k, width)
        self.y = yc.astype(float)
        self.lwx = lchoose(n1, x) + lchoose(n2, m - x)

    def __call__(self, eta, x, _n):
        # eta: (k, J) psi values; returns loglik, E-residual, -variance per (k, J)
        a = self.lw[:, None, :] + eta[..., None] * self.y[:, None, :]
        amax = a.max(axis=-1, keepdims=True)
        e = np.exp(a - amax)
        s = e.sum(axis=-1)
        logz = np.log(s) + amax[..., 0]
        pr = e / s[..., None]
        mean = (pr * self.y[:, None, :]).sum(-1)
        var = (pr * self.y[:, None, :] ** 2).sum(-1) - mean**2
        return self.lwx[:, None] + x[:, None] * eta - logz, x[:, None] - mean, -np.maximum(var, 0.0)


# ------------------------------------------------------------------ the model: arms, designs, quadrature

@dataclass
class _Arm:
    """One likelihood term per study: eta = off + X @ q + sum_d z_d * (R[d] @ q).

    ``X`` (k, P) and ``R`` (d, k, P): the fixed and random-effect design for each study's local
    parameter vector q (length P)."""

    kernel: object
    x: np.ndarray
    n: np.ndarray
    off: np.ndarray
    X: np.ndarray
    R: np.ndarray


def _nodes(d, n):
    """Probabilists' Gauss-Hermite rule for N(0, I_d): nodes (J, d), log weights (J,)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    if d == 1:
        return x[:, None], np.log(w)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    ww = np.outer(w, w)
    return np.column_stack([xx.ravel(), yy.ravel()]), np.log(ww.ravel())


class _Quad:
    """Adaptive Gauss-Hermite integration of prod_arms f(eta) over the study's N(0, I_d) effects."""

    def __init__(self, arms, d, k, n_nodes) -> None:
        self.arms, self.d, self.k = arms, d, k
        self.base = n_nodes
        self.rules: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.z0 = np.zeros((k, d))

    def rule(self, q):
        """Nodes for this tau (sigma): a large scale makes the likelihood a near-step in z (its
        complex singularities come within pi/tau of the real axis), so the rule grows with it."""
        scale = max(1.0, float(np.abs(q[0, 1])), float(np.abs(q[0, 3])) if q.shape[1] == 4 else 0.0)
        n = min(int(math.ceil(self.base * scale / 4) * 4), 160 if self.d == 1 else 40)
        if n not in self.rules:
            self.rules[n] = _nodes(self.d, n)
        return self.rules[n]

    def _eval(self, q, z, need_deriv):
        """Sum over arms at points z (k, J, d): log f (k, J) and, if asked, gradient wrt z
        (k, J, d), Hessian wrt z (k, J, d, d), and dlogf/deta, d2 per arm with the eta-design."""
        ll = 0.0
        out = []
        for a in self.arms:
            fixed = a.off + np.einsum("kp,kp->k", a.X, q)  # (k,)
            slopes = np.einsum("dkp,kp->kd", a.R, q)  # (k, d): d eta / d z
            eta = fixed[:, None] + np.einsum("kjd,kd->kj", z, slopes)
            x = a.x[:, None]
            n = a.n[:, None]
            l_, g, h = a.kernel(eta, a.x, a.n) if isinstance(a.kernel, _Hyper) else a.kernel(eta, x, n)
            ll = ll + l_
            out.append((g, h, slopes))
        return ll, out

    def mode(self, q):
        """Mode of log f(z) - |z|^2/2 per study and the Cholesky factor of the inverse negative
        Hessian there. Newton with per-study backtracking: the function is concave, but a pure Newton
        step can overshoot where the likelihood is nearly flat (e.g. a large tau) and oscillate."""
        z = self.z0.copy()
        d = self.d
        eye = np.eye(d)

        def at(z):
            ll, parts = self._eval(q, z[:, None, :], True)
            obj = ll[:, 0] - 0.5 * (z**2).sum(-1)
            grad = -z.copy()
            hess = np.broadcast_to(-eye, (self.k, d, d)).copy()
            for g, h, s in parts:
                grad += g[:, 0, None] * s
                hess += h[:, 0, None, None] * s[:, :, None] * s[:, None, :]
            return obj, grad, hess

        obj, grad, hess = at(z)
        for _ in range(60):
            step = np.linalg.solve(hess, -grad[..., None])[..., 0]
            t = np.ones(self.k)
            for _ in range(40):
                z_new = z + t[:, None] * step
                obj_new, grad_new, hess_new = at(z_new)
                worse = ~(obj_new >= obj - 1e-13 * np.abs(obj))
                if not worse.any():
                    break
                t = np.where(worse, t / 2, t)
            keep = worse[:, None]
            z = np.where(keep, z, z_new)
            obj = np.where(worse, obj, obj_new)
            grad = np.where(keep, grad, grad_new)
            hess = np.where(keep[..., None], hess, hess_new)
            if np.abs(t[:, None] * step).max() < 1e-11:
                break
        cov = np.linalg.inv(-hess)
        chol = np.linalg.cholesky(cov)
        self.z0 = z.copy()  # warm start for the next call
        return z, chol

    def loglik(self, q, deriv: bool = True):
        """Per-study log marginal likelihood (k,), and (if ``deriv``) gradient (k, P) and
        Hessian (k, P, P) with respect to the local parameter vector q."""
        zhat, L = self.mode(q)
        self.y, self.lw = self.rule(q)
        z = zhat[:, None, :] + np.einsum("kde,je->kjd", L, self.y)  # (k, J, d)
        ll, parts = self._eval(q, z, deriv)
        logdet = np.log(np.abs(np.einsum("kdd->kd", L))).sum(-1)
        a = ll - 0.5 * (z**2).sum(-1) + 0.5 * (self.y**2).sum(-1)[None, :] + self.lw[None, :] + logdet[:, None]
        amax = a.max(axis=1, keepdims=True)
        e = np.exp(a - amax)
        s = e.sum(axis=1)
        logi = np.log(s) + amax[:, 0]
        if not deriv:
            return logi
        pi = e / s[:, None]
        G = 0.0
        H = 0.0
        for (g, h, _), arm in zip(parts, self.arms):
            D = arm.X[:, None, :] + np.einsum("kjd,dkp->kjp", z, arm.R)  # d eta / d q at each node
            G = G + g[..., None] * D
            H = H + h[..., None, None] * D[..., :, None] * D[..., None, :]
        grad = np.einsum("kj,kjp->kp", pi, G)
        EH = np.einsum("kj,kjpq->kpq", pi, H)
        EGG = np.einsum("kj,kjp,kjq->kpq", pi, G, G)
        hess = EH + EGG - grad[:, :, None] * grad[:, None, :]
        return logi, grad, hess


# ------------------------------------------------------------------ Newton with shared and per-study parameters

class _Problem:
    """log L(shared s, local a_i) = sum_i l_i(q_i), q_i = (s, a_i): ``n_shared`` parameters common to
    every study and ``n_local`` (0 or 1) per study. ``fixed`` masks shared parameters held constant."""

    def __init__(self, quad, n_shared, n_local, k) -> None:
        self.quad, self.ns, self.nl, self.k = quad, n_shared, n_local, k
        self.bounded = (1, 3) if n_shared == 4 else (1,)  # tau (and sigma under UM.RS)

    def q(self, s, a):
        parts = [np.broadcast_to(s, (self.k, self.ns))]
        if self.nl:
            parts.append(a.reshape(self.k, self.nl))
        return np.concatenate(parts, axis=1)

    def value(self, s, a):
        return float(self.quad.loglik(self.q(s, a), deriv=False).sum())

    def derivs(self, s, a):
        li, g, h = self.quad.loglik(self.q(s, a))
        ns = self.ns
        gs = g[:, :ns].sum(0)
        hss = h[:, :ns, :ns].sum(0)
        ga = g[:, ns:]
        haa = h[:, ns:, ns:]
        hsa = h[:, :ns, ns:]
        return float(li.sum()), gs, hss, ga, haa, hsa

    def newton(self, s, a, free, tol=1e-10, max_iter=200):
        """Maximise over the free shared parameters and all local ones (damped Newton with
        backtracking; Levenberg-Marquardt shift when the Hessian is not negative definite).
        Returns (s, a, loglik, converged)."""
        s = np.array(s, float)
        a = np.array(a, float)
        free = np.asarray(free, bool)
        lam = 0.0
        failures = 0
        max_failures = 8 if max_iter > 30 else 2
        val = self.value(s, a)
        for _ in range(max_iter):
            val, gs, hss, ga, haa, hsa = self.derivs(s, a)
            active = free.copy()
            for j in self.bounded:  # a scale parameter held at its cap while the likelihood still rises
                if active[j] and abs(s[j]) >= SCALE_MAX * (1 - 1e-12) and gs[j] * s[j] > 0:
                    active[j] = False
            gmax = max(np.abs(gs[active]).max(initial=0.0), np.abs(ga).max(initial=0.0))
            if gmax < 1e-9:  # stationary (also where the likelihood is flat in a parameter)
                return s, a, val, True
            ds, da = self._step(gs, hss, ga, haa, hsa, active, lam)
            if ds is None:
                lam = max(1e-6, 10 * lam)
                continue
            t = 1.0
            improved = False
            for _ in range(30):
                s_new, a_new = s + t * ds, a + t * da
                for j in self.bounded:
                    s_new[j] = np.clip(s_new[j], -SCALE_MAX, SCALE_MAX)
                v_new = self.value(s_new, a_new)
                if np.isfinite(v_new) and v_new >= val - 1e-11 * max(1.0, abs(val)):
                    improved = True
                    break
                t /= 2
            if not improved:
                # No ascent along the direction: at a maximum up to rounding if the gradient is small.
                failures += 1
                if gmax < 1e-6 or failures > max_failures or lam > 1e8:
                    return s, a, val, gmax < 1e-6
                lam = max(1e-4, 10 * lam)
                continue
            s, a = s_new, a_new
            lam = lam / 10 if lam > 1e-8 else 0.0
            size = max(np.abs(t * ds).max(initial=0.0), np.abs(t * da).max(initial=0.0))
            if size < tol and abs(v_new - val) < 1e-12 * max(1.0, abs(val)):
                return s, a, v_new, True
            val = v_new
        return s, a, val, False

    def _step(self, gs, hss, ga, haa, hsa, free, lam):
        """Newton direction for the arrow-shaped Hessian (shared block, per-study blocks, cross
        terms), by the Schur complement; None when the shifted Hessian is not negative definite."""
        idx = np.flatnonzero(free)
        A = -hss[np.ix_(idx, idx)] + lam * np.eye(idx.size)
        b = gs[idx]
        if self.nl:
            D = -haa[:, 0, 0] + lam  # (k,)
            if np.any(D <= 0):
                return None, None
            C = -hsa[:, idx, 0]  # (k, m)
            A = A - (C / D[:, None]).T @ C
            b = b - (C / D[:, None]).T @ ga[:, 0]
        try:
            cho = np.linalg.cholesky(A) if idx.size else None
        except np.linalg.LinAlgError:
            return None, None
        ds_free = np.linalg.solve(A, b) if idx.size else np.zeros(0)
        del cho
        ds = np.zeros(self.ns)
        ds[idx] = ds_free
        if self.nl:
            da = (ga[:, 0] - C @ ds_free) / D
        else:
            da = np.zeros(0)
        return ds, da

    def shared_cov(self, s, a, free):
        """Inverse observed information of the free shared parameters (the local ones profiled out:
        the Schur complement equals the corresponding block of the full inverse)."""
        _, gs, hss, ga, haa, hsa = self.derivs(s, a)
        idx = np.flatnonzero(free)
        A = -hss[np.ix_(idx, idx)]
        if self.nl:
            D = -haa[:, 0, 0]
            C = -hsa[:, idx, 0]
            A = A - (C / D[:, None]).T @ C
        return idx, np.linalg.inv(A)


# ------------------------------------------------------------------ public fit

@dataclass(frozen=True)
class GlmmFit:
    """A GLMM fit: ``theta`` (log OR or log IRR), its SE (inverse observed information, with tau
    and the nuisance parameters estimated), ``tau2``; ``sigma2`` (UM.RS), ``beta0`` (UM.RS: control
    log odds), ``loglik`` (constants of the binomial/Poisson/hypergeometric densities included)."""

    model: str
    theta: float
    se: float
    tau2: float
    loglik: float
    loglik_fe: float
    theta_fe: float
    se_fe: float
    converged: bool
    sigma2: float | None = None
    beta0: float | None = None
    boundary: bool = False
    separation: str | None = None
    k: int = 0
    ci_bound: float | None = None
    lrt_p: float | None = None


def _arms(model, measure, a, n1, c, n2):
    """Likelihood terms and designs. Local parameter order: (theta, tau, [beta0, sigma] | [alpha_i])."""
    k = len(a)
    z = np.zeros(k)
    one = np.ones(k)

    def mat(*cols):
        return np.column_stack(cols)

    from scipy.special import gammaln

    if model == "CM.EL":
        if measure == "OR":
            m = a + c
            kern: Any = _Hyper(a, n1, n2, m)  # a kernel: the exact conditional or a binomial/Poisson one
            arm = _Arm(kern, a, n1, z.copy(), mat(one, z), mat(z, one)[None])
            return [arm], 1, 2, 0, 0.0
        m = a + c  # IRR: a | a + c ~ Bin(m, expit(theta + u + log(t1/t2)))
        const = float(np.sum(gammaln(m + 1) - gammaln(a + 1) - gammaln(c + 1)))
        arm = _Arm(_binom, a, m, np.log(n1 / n2), mat(one, z), mat(z, one)[None])
        return [arm], 1, 2, 0, const
    kern = _binom if measure == "OR" else _pois
    if measure == "OR":
        const = float(np.sum(gammaln(n1 + 1) - gammaln(a + 1) - gammaln(n1 - a + 1)
                             + gammaln(n2 + 1) - gammaln(c + 1) - gammaln(n2 - c + 1)))
        off1 = off2 = z
    else:
        const = float(np.sum(-gammaln(a + 1) - gammaln(c + 1)))  # log person-time is in the offset
        off1, off2 = np.log(n1), np.log(n2)
    if model == "UM.FS":  # q = (theta, tau, alpha_i)
        t = _Arm(kern, a, n1, off1, mat(one, z, one), mat(z, one / 2, z)[None])
        ctl = _Arm(kern, c, n2, off2, mat(z, z, one), mat(z, -one / 2, z)[None])
        return [t, ctl], 1, 3, 1, const
    # UM.RS: q = (theta, tau, beta0, sigma); z = (z_u, z_v)
    t = _Arm(kern, a, n1, off1, mat(one, z, one, z), np.stack([mat(z, one / 2, z, z), mat(z, z, z, one)]))
    ctl = _Arm(kern, c, n2, off2, mat(z, z, one, z), np.stack([mat(z, -one / 2, z, z), mat(z, z, z, one)]))
    return [t, ctl], 2, 4, 0, const


def _separation(measure, a, n1, c, n2):
    """'-' or '+' when the ML estimate of theta is infinite: every study's treatment events sit at the
    lowest (highest) value its margins allow (e.g. no treatment-arm events anywhere), so the
    likelihood keeps rising as theta falls (rises). None otherwise."""
    m = a + c
    if measure == "OR":
        lo, hi = np.maximum(0, m - n2), np.minimum(n1, m)
    else:
        lo, hi = np.zeros_like(m), m
    if np.all(a == lo):
        return "-"
    if np.all(a == hi):
        return "+"
    return None


def _maximise(prob, s, a_loc, free, model, grid_values=None):
    """Maximise the likelihood over the ``free`` shared parameters (index 1 = tau) and the local ones.

    First with tau = 0, then along a profile grid of tau values (warm starts) so that the maximum is
    bracketed, then a joint Newton fit from the best grid point. Returns (s, a, loglik, converged,
    s_fe, a_fe, loglik_fe, converged_fe); ``*_fe`` is the tau = 0 fit."""
    free = np.asarray(free, bool)
    free_fe = free.copy()
    free_fe[1] = False
    s = np.array(s, float)
    s[1] = 0.0
    s_fe, a_fe, ll_fe, ok_fe = prob.newton(s, a_loc, free_fe)
    grid = []
    s_t, a_t = s_fe.copy(), a_fe.copy()
    for tau in (TAU_GRID if grid_values is None else grid_values)[1:]:
        s_t[1] = tau
        s_t, a_t, ll_t, _ = prob.newton(s_t, a_t, free_fe, tol=1e-6, max_iter=30)
        grid.append((ll_t, s_t.copy(), a_t.copy()))
        # Bracketed: two grid points past the best, both clearly lower, close the search.
        # (The profile in tau is taken as unimodal beyond the grid's best point: checked on the
        # fixtures and 2,000 simulated datasets, benchmarks/bench_glmm.py.)
        top_val = max(ll_fe, max(g[0] for g in grid))
        if len(grid) >= 2 and grid[-1][0] < grid[-2][0] < top_val - 1.0 and grid[-1][0] < top_val - 2.0:
            break
    best = max(grid, key=lambda g: g[0])
    if best[0] > ll_fe:
        s1, a1, ll1, ok = prob.newton(best[1], best[2], free)
    else:
        s1, a1, ll1, ok = s_fe.copy(), a_fe.copy(), ll_fe, ok_fe
        # tau = 0 is best on the grid: if the curvature in tau there is positive it is not a
        # maximum, so start the joint fit just off the boundary.
        _, _, hss, _, _, _ = prob.derivs(s1, a1)
        if hss[1, 1] > 0:
            s2 = s1.copy()
            s2[1] = 0.02
            s2, a2, ll2, ok2 = prob.newton(s2, a1, free)
            if ll2 > ll1:
                s1, a1, ll1, ok = s2, a2, ll2, ok2
    if s1[1] ** 2 < 1e-10:  # boundary: tau^2 = 0
        s1 = s1.copy()
        s1[1] = 0.0
        s1, a1, ll1, ok = s_fe.copy(), a_fe.copy(), ll_fe, ok_fe
    return s1, a1, ll1, ok, s_fe, a_fe, ll_fe, ok_fe


def _setup(model, measure, a, n1, c, n2):
    k = len(a)
    arms, d, P, nl, const = _arms(model, measure, a, n1, c, n2)
    quad = _Quad(arms, d, k, NODES if d == 1 else NODES_2D)
    ns = P - nl
    prob = _Problem(quad, ns, nl, k)
    # Starting values: crude arm log odds (log rates) with 1/2 added, their mean difference.
    if measure == "OR":
        p2, p1 = (c + 0.5) / (n2 + 1), (a + 0.5) / (n1 + 1)
        lo2, lo1 = np.log(p2 / (1 - p2)), np.log(p1 / (1 - p1))
    else:
        lo2, lo1 = np.log((c + 0.5) / n2), np.log((a + 0.5) / n1)
    s = np.zeros(ns)
    s[0] = float(np.mean(lo1 - lo2))
    if model == "UM.RS":
        s[2] = float(np.mean(lo2))
        s[3] = float(np.std(lo2)) + 0.1
    a_loc = lo2.copy() if nl else np.zeros(0)
    return prob, s, a_loc, const


def fit_glmm(model: str, measure: str, a: np.ndarray, n1: np.ndarray, c: np.ndarray, n2: np.ndarray,
             level: float = 0.95) -> GlmmFit:
    """Maximum-likelihood fit of ``model`` (UM.FS, UM.RS, CM.EL) for ``measure`` (OR: events and
    arm sizes; IRR: events and person-time) on studies already cleared of double zeros.

    When the ML estimate of theta is infinite (see ``_separation``), ``theta`` is -inf or +inf, the
    SE is NaN, and ``ci_bound`` holds the finite end of the profile-likelihood interval at
    ``level`` and ``lrt_p`` the likelihood-ratio test of theta = 0."""
    a, n1, c, n2 = (np.asarray(v, float) for v in (a, n1, c, n2))
    prob, s, a_loc, const = _setup(model, measure, a, n1, c, n2)
    ns = prob.ns
    free = np.ones(ns, bool)
    sep = _separation(measure, a, n1, c, n2)
    if sep:
        return _fit_separated(model, prob, s, a_loc, const, sep, level)
    s1, a1, ll1, ok, s_fe, a_fe, ll_fe, _ = _maximise(prob, s, a_loc, free, model)
    free_fe = free.copy()
    free_fe[1] = False
    _, cov_fe = prob.shared_cov(s_fe, a_fe, free_fe)
    se_fe = float(np.sqrt(cov_fe[0, 0])) if cov_fe[0, 0] > 0 else float("nan")
    boundary = s1[1] == 0.0
    _, cov = prob.shared_cov(s1, a1, free_fe if boundary else free)
    se = float(np.sqrt(cov[0, 0])) if cov[0, 0] > 0 else float("nan")
    extra: dict[str, Any] = dict(sigma2=float(s1[3] ** 2), beta0=float(s1[2])) if model == "UM.RS" else {}
    return GlmmFit(model=model, theta=float(s1[0]), se=se, tau2=float(s1[1] ** 2), loglik=ll1 + const,
                   loglik_fe=ll_fe + const, theta_fe=float(s_fe[0]), se_fe=se_fe,
                   converged=bool(ok), boundary=bool(boundary), k=len(a), **extra)


def _fit_separated(model, prob, s, a_loc, const, sep, level):
    """Infinite ML estimate: profile likelihood in theta (tau and the nuisance parameters maximised
    at each theta). The supremum is taken at theta = -/+40 (log scale; the likelihood's remaining
    rise beyond is below 1e-15); the finite CI end solves 2 (l_sup - l_p(theta)) = chi2_1(level)."""
    from scipy.optimize import brentq
    from scipy.special import chdtrc, chdtri

    sign = -1.0 if sep == "-" else 1.0
    free = np.ones(prob.ns, bool)
    free[0] = False
    state = {"a": a_loc}

    def lp(theta):
        s0 = s.copy()
        s0[0] = theta
        r = _maximise(prob, s0, state["a"], free, model, grid_values=COARSE_GRID)
        state["a"] = r[1]
        return r[2], r[0]

    ll_sup, s_sup = lp(40 * sign)
    crit = chdtri(1, 1 - level)
    ll0, _ = lp(0.0)
    lrt = max(0.0, 2 * (ll_sup - ll0))
    f = lambda t: 2 * (ll_sup - lp(t)[0]) - crit  # noqa: E731
    # From the null outwards on the side away from the infinite estimate until the bound is passed.
    far = 0.0
    while f(far) < 0 and abs(far) < 40:
        far -= 2 * sign
    bound = brentq(f, 40 * sign, far, xtol=1e-7) if f(far) >= 0 else float("nan")
    extra = dict(sigma2=float(s_sup[3] ** 2), beta0=float(s_sup[2])) if model == "UM.RS" else {}
    # tau^2 is not identified at an infinite theta (the likelihood no longer depends on it): NaN.
    return GlmmFit(model=model, theta=sign * math.inf, se=float("nan"), tau2=float("nan"),
                   loglik=ll_sup + const, loglik_fe=ll_sup + const, theta_fe=sign * math.inf,
                   se_fe=float("nan"), converged=True, boundary=False, separation=sep, k=prob.k,
                   ci_bound=float(bound), lrt_p=float(chdtrc(1, lrt)), **extra)


# ------------------------------------------------------------------ MetaResult for the pooling chain

def arm_counts(es: EffectSizes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a, n1, c, n2) of the studies kept by escalc (events and sizes, or events and person-time)."""
    cols = es.table.columns
    if es.table.layout == "binary":
        return cols["events_treat"], cols["n_treat"], cols["events_ctrl"], cols["n_ctrl"]
    return cols["events_treat"], cols["time_treat"], cols["events_ctrl"], cols["time_ctrl"]


def glmm_rma(es: EffectSizes, method: str, level: float = 0.95, pi: str = "z") -> MetaResult:
    """Fit the GLMM named by ``method`` (GLMM-FS, GLMM-RS, GLMM-EXACT) to the arm counts behind ``es``
    and wrap it as a MetaResult (log scale). Wald CI and z test as metafor's rma.glmm; the prediction
    interval is theta +/- z sqrt(se^2 + tau^2) (metafor's predict for rma.glmm)."""
    from dataclasses import replace

    from scipy.special import chdtrc, ndtr, ndtri

    from ..results import MetaResult
    from .models import study_results

    model = MODELS[method]
    ok = (es.measure == "OR" and es.table.layout == "binary") or (es.measure == "IRR" and es.table.layout == "rates")
    if not ok:
        raise InputError(f"method {method} needs arm counts with --measure OR (events_treat, n_treat, events_ctrl, "
                         "n_ctrl) or IRR (events_treat, time_treat, events_ctrl, time_ctrl)",
                         file=es.table.path, column="--method")
    a, n1, c, n2 = (np.asarray(v, float) for v in arm_counts(es))
    if model == "UM.RS" and es.k < 2:
        raise InputError(f"method {method} needs at least 2 studies, found {es.k}", file=es.table.path)
    f = fit_glmm(model, es.measure, a, n1, c, n2, level=level)
    z = float(ndtri(0.5 + level / 2))
    # I^2 and H^2 as metafor's rma.glmm: tau^2 against the typical within-study variance of the
    # escalc effects, vt = (k - 1) / (sum w - sum w^2 / sum w), w = 1/vi (Higgins & Thompson 2002).
    w = 1 / es.vi
    den = w.sum() - (w**2).sum() / w.sum()
    vt = (es.k - 1) / den if es.k > 1 and den > 0 else float("nan")
    i2 = 100 * f.tau2 / (vt + f.tau2) if math.isfinite(vt) else float("nan")  # NaN if tau^2 is
    h2 = f.tau2 / vt + 1 if math.isfinite(vt) else float("nan")
    lrt = max(0.0, 2 * (f.loglik - f.loglik_fe))
    notes = list(es.notes)
    if any(es.corrected):
        notes.append(f"{method} models the counts as given: the zero-cell increment changes only the study "
                     "effects shown and the typical within-study variance behind I^2")
    info = {"model": model, "loglik": f.loglik, "loglik_tau2_0": f.loglik_fe,
            "lrt_tau2": lrt if f.separation is None else None,
            # tau^2 = 0 lies on the boundary: the LRT is referred to a 50:50 mixture of chi2_0 and chi2_1
            "lrt_tau2_p": 0.5 * float(chdtrc(1, lrt)) if (lrt > 0 and f.separation is None) else (
                1.0 if f.separation is None else None),
            "estimate_tau2_0": f.theta_fe, "se_tau2_0": f.se_fe, "converged": f.converged,
            "quadrature": ("exact summation over the non-central hypergeometric support, adaptive Gauss-Hermite "
                           f"({NODES} nodes) over the random effect") if es.measure == "OR" and model == "CM.EL" else
                          (f"adaptive Gauss-Hermite, {NODES_2D}x{NODES_2D} nodes" if model == "UM.RS"
                           else f"adaptive Gauss-Hermite, {NODES} nodes")}
    if f.sigma2 is not None:
        info.update(sigma2=f.sigma2, beta0=f.beta0)
    if f.separation is None:
        est, se = f.theta, f.se
        lo, hi = est - z * se, est + z * se
        stat = est / se
        p = float(2 * ndtr(-abs(stat)))
        spread = math.sqrt(se**2 + f.tau2)
        pi_lo, pi_hi = est - z * spread, est + z * spread
        if f.boundary:
            notes.append(f"{method}: tau^2 estimated at 0 (boundary of the parameter space)")
    else:
        est, se, stat = f.theta, float("nan"), float("nan")
        p = cast(float, f.lrt_p)  # set, with the bound, when the data are separated
        bound = cast(float, f.ci_bound)
        lo, hi = (-math.inf, bound) if f.separation == "-" else (bound, math.inf)
        pi_lo = pi_hi = float("nan")
        arm = "treatment" if f.separation == "-" else "control"
        ratio = "OR" if es.measure == "OR" else "IRR"
        notes.append(f"{method}: the maximum-likelihood {ratio} is {'0' if f.separation == '-' else 'infinite'}: "
                     f"in every study the {arm} arm has as few events as the margins allow (no {arm}-arm "
                     f"events); the CI is the profile-likelihood interval, open on that side, and p is the "
                     f"likelihood-ratio test of {ratio} = 1; tau^2 is not identified")
        info["separation"] = True
    if not f.converged:
        notes.append(f"{method}: the Newton iteration stopped before its tolerance; the estimates are the best found")
    notes.append(f"{method}: study weights shown are inverse-variance weights 1/(vi + tau^2) of the escalc "
                 "effects, for display only (a GLMM has no study weights)")
    tau2 = f.tau2
    weights = 1 / (es.vi + (tau2 if math.isfinite(tau2) else 0.0))
    res = MetaResult(
        measure=es.measure, method=method, ci_method="wald", pi_method="z" if f.separation is None else "none",
        scale=es.scale, k=es.k, estimate=est, se=se, ci_low=lo, ci_high=hi, pi_low=pi_lo, pi_high=pi_hi,
        tau2=tau2, tau2_ci_low=float("nan"), tau2_ci_high=float("nan"),
        tau=math.sqrt(tau2) if math.isfinite(tau2) else float("nan"),
        q=float("nan"), q_df=es.k - 1, q_p=float("nan"), i2=i2, h2=h2, stat=stat, p=p, df=None,
        studies=study_results(es, 100 * weights / weights.sum(), level), level=level, notes=tuple(notes),
        effects=es)
    return replace(res, extra={"glmm": info})
