//! Motion models of the tracker (model section 6.1), discretised exactly.
//!
//! The target state is Cartesian ENU, ordered by derivative then axis:
//! `[p_x, p_y, p_z, v_x, v_y, v_z (, a_x, a_y, a_z)]`. Every model acts identically
//! and independently on each axis, so it is described by one per-axis transition
//! `F1` and process noise `Q1` (2x2 for CV, 3x3 for Singer); the full matrices are
//! `F1 (x) I3` and `Q1 (x) I3`, which the filter exploits instead of forming them.
//!
//! Singer: the closed-form `Q` cancels catastrophically for small `x = T/tau_m` (at
//! `tau_m = 20 s`, `T = 10 ms` q11 even comes out negative). Here `F` and `Q` come
//! from power series in `x` for `x < 1` (exact to round-off, no transcendental
//! call except `exp(-x)`), and from the closed form above that, where it is well
//! conditioned. [`singer_discrete_expm`] is the independent reference (Van Loan's
//! block matrix exponential) the tests compare against.

use serde::{Deserialize, Serialize};

use crate::linalg::{self, Mat};

/// Number of series terms: the remainder is below `2^25/25!`, far under f64 round-off for `x < 1`.
const SERIES_TERMS: usize = 25;

/// Below this `x = T/tau_m` the Singer matrices use the power series.
const SERIES_LIMIT: f64 = 1.0;

/// Per-axis discrete model over one interval: transition and process noise on the
/// leading `k x k` block (`k = 2` for CV, 3 for Singer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AxisModel {
    /// States per axis.
    pub k: usize,
    /// Transition `F1`.
    pub f: Mat<3, 3>,
    /// Process noise `Q1`.
    pub q: Mat<3, 3>,
}

/// A tracker motion model with its parameters in SI units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum MotionModel {
    /// Constant velocity with discrete white-noise acceleration of std `sa_mps2`.
    Cv {
        /// Acceleration standard deviation (m/s^2).
        sa_mps2: f64,
    },
    /// Singer: acceleration as a first-order Markov process.
    Singer {
        /// Stationary acceleration standard deviation (m/s^2).
        sm_mps2: f64,
        /// Maneuver time constant (s).
        tau_s: f64,
    },
}

impl MotionModel {
    /// States per axis (2 or 3).
    pub fn states_per_axis(&self) -> usize {
        match self {
            MotionModel::Cv { .. } => 2,
            MotionModel::Singer { .. } => 3,
        }
    }

    /// Total state dimension (6 or 9).
    pub fn state_dim(&self) -> usize {
        3 * self.states_per_axis()
    }

    /// The discrete per-axis model over an interval of `dt_s` seconds.
    pub fn axis_model(&self, dt_s: f64) -> AxisModel {
        match *self {
            MotionModel::Cv { sa_mps2 } => {
                let (f, q) = cv_dwna(dt_s, sa_mps2);
                let mut fm = linalg::zeros::<3, 3>();
                let mut qm = linalg::zeros::<3, 3>();
                for i in 0..2 {
                    for j in 0..2 {
                        fm[i][j] = f[i][j];
                        qm[i][j] = q[i][j];
                    }
                }
                AxisModel { k: 2, f: fm, q: qm }
            }
            MotionModel::Singer { sm_mps2, tau_s } => {
                let (f, q) = singer_discrete(dt_s, tau_s, sm_mps2);
                AxisModel { k: 3, f, q }
            }
        }
    }
}

/// CV with discrete white-noise acceleration: `F = [[1, T], [0, 1]]`,
/// `Q = sa^2 [[T^4/4, T^3/2], [T^3/2, T^2]]`.
pub fn cv_dwna(dt_s: f64, sa_mps2: f64) -> (Mat<2, 2>, Mat<2, 2>) {
    let t = dt_s;
    let s2 = sa_mps2 * sa_mps2;
    let t2 = t * t;
    (
        [[1.0, t], [0.0, 1.0]],
        [
            [s2 * t2 * t2 / 4.0, s2 * t2 * t / 2.0],
            [s2 * t2 * t / 2.0, s2 * t2],
        ],
    )
}

const fn factorial(n: usize) -> f64 {
    let mut f = 1.0;
    let mut i = 2;
    while i <= n {
        f *= i as f64;
        i += 1;
    }
    f
}

/// Series coefficients of `Q_ij / (qc T^(7-i-j))` in powers of `-x` (1-based `i, j`):
/// `c_k = sum_{n=0..k} 1 / ((n+3-i)! (k-n+3-j)! (k+7-i-j))`, from integrating the
/// product of the Taylor series of the noise-to-state responses.
const fn singer_q_coefficients(i: usize, j: usize) -> [f64; SERIES_TERMS] {
    let mut c = [0.0; SERIES_TERMS];
    let mut k = 0;
    while k < SERIES_TERMS {
        let mut s = 0.0;
        let mut n = 0;
        while n <= k {
            s += 1.0 / (factorial(n + 3 - i) * factorial(k - n + 3 - j) * (k + 7 - i - j) as f64);
            n += 1;
        }
        c[k] = s;
        k += 1;
    }
    c
}

/// `sum_k (-x)^k / (k + shift)!`.
const fn shifted_exp_coefficients(shift: usize) -> [f64; SERIES_TERMS] {
    let mut c = [0.0; SERIES_TERMS];
    let mut k = 0;
    while k < SERIES_TERMS {
        c[k] = 1.0 / factorial(k + shift);
        k += 1;
    }
    c
}

const Q11: [f64; SERIES_TERMS] = singer_q_coefficients(1, 1);
const Q12: [f64; SERIES_TERMS] = singer_q_coefficients(1, 2);
const Q13: [f64; SERIES_TERMS] = singer_q_coefficients(1, 3);
const Q22: [f64; SERIES_TERMS] = singer_q_coefficients(2, 2);
const Q23: [f64; SERIES_TERMS] = singer_q_coefficients(2, 3);
const Q33: [f64; SERIES_TERMS] = singer_q_coefficients(3, 3);
const PHI1: [f64; SERIES_TERMS] = shifted_exp_coefficients(1);
const PHI2: [f64; SERIES_TERMS] = shifted_exp_coefficients(2);

#[inline]
fn horner(c: &[f64; SERIES_TERMS], y: f64) -> f64 {
    let mut s = 0.0;
    for ck in c.iter().rev() {
        s = s * y + ck;
    }
    s
}

/// Singer transition and process noise over `dt_s` (model section 6.1), accurate
/// to round-off for every `T/tau_m` (series below 1, closed form above).
pub fn singer_discrete(dt_s: f64, tau_s: f64, sm_mps2: f64) -> (Mat<3, 3>, Mat<3, 3>) {
    let t = dt_s;
    let alpha = 1.0 / tau_s;
    let x = alpha * t;
    if x >= SERIES_LIMIT {
        return (
            singer_transition_closed_form(t, tau_s),
            singer_q_closed_form(t, tau_s, sm_mps2),
        );
    }
    let y = -x;
    let e1 = (-x).exp();
    let f = [
        [1.0, t, t * t * horner(&PHI2, y)],
        [0.0, 1.0, t * horner(&PHI1, y)],
        [0.0, 0.0, e1],
    ];
    let qc = 2.0 * alpha * sm_mps2 * sm_mps2;
    let t2 = t * t;
    let t3 = t2 * t;
    let q11 = qc * t3 * t2 * horner(&Q11, y);
    let q12 = qc * t2 * t2 * horner(&Q12, y);
    let q13 = qc * t3 * horner(&Q13, y);
    let q22 = qc * t3 * horner(&Q22, y);
    let q23 = qc * t2 * horner(&Q23, y);
    let q33 = qc * t * horner(&Q33, y);
    (f, [[q11, q12, q13], [q12, q22, q23], [q13, q23, q33]])
}

/// Singer transition in closed form.
pub fn singer_transition_closed_form(dt_s: f64, tau_s: f64) -> Mat<3, 3> {
    let alpha = 1.0 / tau_s;
    let x = alpha * dt_s;
    let e1 = (-x).exp();
    [
        [1.0, dt_s, (x - 1.0 + e1) / (alpha * alpha)],
        [0.0, 1.0, (1.0 - e1) / alpha],
        [0.0, 0.0, e1],
    ]
}

/// Singer process noise in the textbook closed form `Q = 2 alpha sm^2 [q_ij]`.
/// Ill-conditioned for small `T/tau_m`; kept as a reference and for `x >= 1`.
pub fn singer_q_closed_form(dt_s: f64, tau_s: f64, sm_mps2: f64) -> Mat<3, 3> {
    let a = 1.0 / tau_s;
    let x = a * dt_s;
    let e1 = (-x).exp();
    let e2 = (-2.0 * x).exp();
    let (a2, a3) = (a * a, a * a * a);
    let (a4, a5) = (a3 * a, a3 * a2);
    let x2 = x * x;
    let x3 = x2 * x;
    let q11 = (1.0 - e2 + 2.0 * x + 2.0 * x3 / 3.0 - 2.0 * x2 - 4.0 * x * e1) / (2.0 * a5);
    let q12 = (e2 + 1.0 - 2.0 * e1 + 2.0 * x * e1 - 2.0 * x + x2) / (2.0 * a4);
    let q13 = (1.0 - e2 - 2.0 * x * e1) / (2.0 * a3);
    let q22 = (4.0 * e1 - 3.0 - e2 + 2.0 * x) / (2.0 * a3);
    let q23 = (e2 + 1.0 - 2.0 * e1) / (2.0 * a2);
    let q33 = (1.0 - e2) / (2.0 * a);
    let s = 2.0 * a * sm_mps2 * sm_mps2;
    [
        [s * q11, s * q12, s * q13],
        [s * q12, s * q22, s * q23],
        [s * q13, s * q23, s * q33],
    ]
}

/// Singer `F` and `Q` from Van Loan's block matrix exponential:
/// `M = T [[-A, G qc G^T], [0, A^T]]`, `E = expm(M)`, `F = E22^T`, `Q = F E12`,
/// symmetrised. The independent reference for [`singer_discrete`].
pub fn singer_discrete_expm(dt_s: f64, tau_s: f64, sm_mps2: f64) -> (Mat<3, 3>, Mat<3, 3>) {
    let alpha = 1.0 / tau_s;
    let qc = 2.0 * alpha * sm_mps2 * sm_mps2;
    let a: Mat<3, 3> = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -alpha]];
    let mut m = linalg::zeros::<6, 6>();
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = -a[i][j] * dt_s;
            m[3 + i][3 + j] = a[j][i] * dt_s;
        }
    }
    m[2][5] = qc * dt_s;
    let e = linalg::expm(&m);
    let mut e22t = linalg::zeros::<3, 3>();
    let mut e12 = linalg::zeros::<3, 3>();
    for i in 0..3 {
        for j in 0..3 {
            e22t[i][j] = e[3 + j][3 + i];
            e12[i][j] = e[i][3 + j];
        }
    }
    let mut q = linalg::mul(&e22t, &e12);
    linalg::symmetrize_n(&mut q, 3);
    (e22t, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    #[test]
    fn singer_q_matches_reference_values() {
        // Model section 11.8: T = 1 s, tau_m = 20 s, sm = 1.
        let want = [
            (0, 0, 0.0048636),
            (1, 1, 0.0321120),
            (2, 2, 0.0951626),
            (0, 1, 0.0120919),
            (0, 2, 0.0158558),
            (1, 2, 0.0475714),
        ];
        let (_, q_series) = singer_discrete(1.0, 20.0, 1.0);
        let q_closed = singer_q_closed_form(1.0, 20.0, 1.0);
        let (_, q_expm) = singer_discrete_expm(1.0, 20.0, 1.0);
        for (i, j, v) in want {
            for q in [&q_series, &q_closed, &q_expm] {
                assert!(
                    (q[i][j] - v).abs() < 6e-8,
                    "q{}{} = {} want {v}",
                    i + 1,
                    j + 1,
                    q[i][j]
                );
                assert_eq!(q[i][j], q[j][i]);
            }
            assert!(rel(q_series[i][j], q_expm[i][j]) < 1e-12);
            assert!(rel(q_closed[i][j], q_expm[i][j]) < 1e-9);
        }
    }

    #[test]
    fn singer_series_matches_expm_across_scales() {
        for &(dt, tau) in &[
            (0.01, 20.0),
            (0.01, 1000.0),
            (0.1, 0.3),
            (0.5, 0.5),
            (0.99, 1.0),
            (1.0, 1.0),
            (2.0, 0.5),
            (0.02, 1e5),
        ] {
            let (f, q) = singer_discrete(dt, tau, 7.0);
            let (fe, qe) = singer_discrete_expm(dt, tau, 7.0);
            for i in 0..3 {
                for j in 0..3 {
                    if fe[i][j] != 0.0 {
                        assert!(rel(f[i][j], fe[i][j]) < 1e-11, "F{i}{j} dt {dt} tau {tau}");
                    }
                    assert!(
                        rel(q[i][j], qe[i][j]) < 1e-9,
                        "Q{i}{j} dt {dt} tau {tau}: {} vs {}",
                        q[i][j],
                        qe[i][j]
                    );
                }
            }
        }
    }

    #[test]
    fn singer_q_is_psd_where_the_closed_form_breaks_down() {
        let (_, q) = singer_discrete(0.01, 1000.0, 1.0);
        assert!(linalg::cholesky_n(&q, 3).is_some(), "{q:?}");
        // The closed form loses q11 to cancellation at tau_m = 20 s, T = 10 ms.
        let (_, qs) = singer_discrete(0.01, 20.0, 1.0);
        let (_, qe) = singer_discrete_expm(0.01, 20.0, 1.0);
        assert!(qs[0][0] > 0.0);
        assert!(rel(qs[0][0], qe[0][0]) < 1e-9);
    }

    #[test]
    fn singer_tends_to_cv_like_double_integration_for_long_tau() {
        // For tau -> infinity, F13 -> T^2/2 and F23 -> T.
        let (f, _) = singer_discrete(0.5, 1e9, 1.0);
        assert!(rel(f[0][2], 0.125) < 1e-8);
        assert!(rel(f[1][2], 0.5) < 1e-8);
    }

    #[test]
    fn discretisation_composes_over_split_intervals() {
        // Exact discretisation: propagating over T/2 twice equals once over T.
        let (f1, q1) = singer_discrete(0.3, 2.0, 5.0);
        let (f2, q2) = singer_discrete(0.6, 2.0, 5.0);
        let ff = linalg::mul(&f1, &f1);
        let qq = linalg::add(
            &linalg::mul(&linalg::mul(&f1, &q1), &linalg::transpose(&f1)),
            &q1,
        );
        for i in 0..3 {
            for j in 0..3 {
                assert!((ff[i][j] - f2[i][j]).abs() < 1e-13);
                assert!(rel(qq[i][j], q2[i][j]) < 1e-12);
            }
        }
    }
}
