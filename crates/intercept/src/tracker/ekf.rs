//! Extended Kalman filter core: exact prediction with a per-axis motion model and
//! the spherical measurement update (model section 6.2).
//!
//! State storage is fixed at 9 (`[p, v, a]`); a CV filter uses the leading 6. The
//! update handles any subset of range, azimuth, elevation and range rate (2 to 4
//! components), wraps the angle innovations, gates on the NIS, and uses the Joseph
//! form followed by symmetrisation so that the covariance stays symmetric positive
//! definite over long runs with very accurate measurements. Nothing allocates.

// Index loops mirror the matrix formulas and are clearer than iterator chains here.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use super::models::AxisModel;
use crate::Vec3;
use crate::linalg::{self, Mat};
use crate::radar::{Detection, spherical, spherical_jacobian, wrap_angle};

/// State storage size (Singer's 9; CV uses the leading 6).
pub const MAX_STATES: usize = 9;

/// Largest measurement: range, azimuth, elevation, range rate.
const MAX_MEAS: usize = 4;

/// Chi-square 99.9 % points for 1 to 4 degrees of freedom (the update gate).
pub const CHI2_999: [f64; 5] = [0.0, 10.828, 13.816, 16.266, 18.467];

/// Above this elevation (or with the horizontal range under 1e-3 of the range) the
/// azimuth row is dropped: its Jacobian blows up at the zenith.
const ZENITH_ELEVATION_RAD: f64 = 85.0 * std::f64::consts::PI / 180.0;

/// Outcome of one measurement update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateOutcome {
    /// Applied; normalised innovation squared and its degrees of freedom.
    Accepted {
        /// NIS.
        nis: f64,
        /// Measurement dimension.
        dof: usize,
    },
    /// Rejected by the NIS gate.
    Rejected {
        /// NIS.
        nis: f64,
        /// Measurement dimension.
        dof: usize,
    },
    /// Not applicable (degenerate geometry, no usable component, or a numerically
    /// singular innovation covariance).
    Skipped,
}

/// Filter state and covariance at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EkfState {
    /// Active state dimension (6 or 9).
    pub n: usize,
    /// State `[p(3), v(3), a(3)]`; entries past `n` are zero.
    pub x: [f64; MAX_STATES],
    /// Covariance; only the leading `n x n` block is meaningful.
    pub p: Mat<MAX_STATES, MAX_STATES>,
    /// Time the state refers to (s).
    pub time_s: f64,
}

impl EkfState {
    /// Position estimate.
    #[inline]
    pub fn position(&self) -> Vec3 {
        Vec3::new(self.x[0], self.x[1], self.x[2])
    }

    /// Velocity estimate.
    #[inline]
    pub fn velocity(&self) -> Vec3 {
        Vec3::new(self.x[3], self.x[4], self.x[5])
    }

    /// Acceleration state (zero for CV).
    #[inline]
    pub fn acceleration(&self) -> Vec3 {
        if self.n > 6 {
            Vec3::new(self.x[6], self.x[7], self.x[8])
        } else {
            Vec3::ZERO
        }
    }

    /// Propagates state and covariance by the per-axis model `m` over `dt_s`, with
    /// a known constant acceleration input `u` (gravity for ballistic targets):
    /// `x <- F x + [T^2/2, T] u`, `P <- F P F^T + Q`.
    pub fn predict(&mut self, m: &AxisModel, dt_s: f64, known_accel: Vec3) {
        debug_assert_eq!(3 * m.k, self.n);
        // The per-axis size as a constant lets the small loops unroll; every
        // instance runs the same operations in the same order.
        match m.k {
            2 => self.predict_k(m, dt_s, known_accel, 2),
            3 => self.predict_k(m, dt_s, known_accel, 3),
            k => self.predict_k(m, dt_s, known_accel, k),
        }
    }

    /// [`Self::predict`] with `k` states per axis. Always inlined so that the
    /// constant `k` of each call above is propagated into the loops.
    #[inline(always)]
    fn predict_k(&mut self, m: &AxisModel, dt_s: f64, known_accel: Vec3, k: usize) {
        let n = 3 * k;
        // State: x'[i*3+a] = sum_b F1[i][b] x[b*3+a].
        let mut x = [0.0; MAX_STATES];
        for i in 0..k {
            for a in 0..3 {
                let mut s = 0.0;
                for b in 0..k {
                    s += m.f[i][b] * self.x[b * 3 + a];
                }
                x[i * 3 + a] = s;
            }
        }
        let u = known_accel.to_array();
        if u != [0.0; 3] {
            let half_t2 = 0.5 * dt_s * dt_s;
            for a in 0..3 {
                x[a] += half_t2 * u[a];
                x[3 + a] += dt_s * u[a];
            }
        }
        self.x = x;
        // Covariance: T = (F1 (x) I3) P, then P' = T (F1 (x) I3)^T + Q1 (x) I3.
        let mut t = [[0.0; MAX_STATES]; MAX_STATES];
        for i in 0..k {
            for r in 0..3 {
                let row = i * 3 + r;
                for c in 0..n {
                    let mut s = 0.0;
                    for a in 0..k {
                        s += m.f[i][a] * self.p[a * 3 + r][c];
                    }
                    t[row][c] = s;
                }
            }
        }
        for r in 0..n {
            for j in 0..k {
                for s_ax in 0..3 {
                    let mut s = 0.0;
                    for b in 0..k {
                        s += m.f[j][b] * t[r][b * 3 + s_ax];
                    }
                    self.p[r][j * 3 + s_ax] = s;
                }
            }
        }
        for i in 0..k {
            for j in 0..k {
                let q = m.q[i][j];
                for a in 0..3 {
                    self.p[i * 3 + a][j * 3 + a] += q;
                }
            }
        }
        linalg::symmetrize_n(&mut self.p, n);
        self.time_s += dt_s;
    }

    /// Applies the detection `det` (already predicted to its time stamp). With
    /// `gate`, an update whose NIS exceeds the chi-square 99.9 % point is rejected.
    pub fn update(&mut self, det: &Detection, gate: bool) -> UpdateOutcome {
        // A constant state size lets the small loops unroll; every instance
        // runs the same operations in the same order.
        match self.n {
            6 => self.update_n(det, gate, 6),
            9 => self.update_n(det, gate, 9),
            n => self.update_n(det, gate, n),
        }
    }

    /// [`Self::update`] with `n == self.n` states. Always inlined so that the
    /// constant `n` of each call above is propagated into the loops.
    #[inline(always)]
    fn update_n(&mut self, det: &Detection, gate: bool, n: usize) -> UpdateOutcome {
        let d = self.position() - det.sensor_position_m;
        let u = self.velocity() - det.sensor_velocity_mps;
        let pred = spherical(d, u);
        if pred.range_m.is_nan() || pred.range_m <= 1e-6 {
            return UpdateOutcome::Skipped;
        }
        let jac = spherical_jacobian(d, u);
        let rho = d.x.hypot(d.y);
        let near_zenith =
            rho < 1e-3 * pred.range_m || pred.elevation_rad.abs() > ZENITH_ELEVATION_RAD;

        // Assemble the active rows: innovation, Jacobian (6 columns), variance.
        let mut nu = [0.0; MAX_MEAS];
        let mut h = [[0.0; 6]; MAX_MEAS];
        let mut var = [0.0; MAX_MEAS];
        let mut m = 0;
        let sig = &det.sigma;
        if let Some(r) = det.range_m {
            nu[m] = r - pred.range_m;
            h[m] = jac[0];
            var[m] = sig.range_m * sig.range_m;
            m += 1;
        }
        if !near_zenith {
            nu[m] = wrap_angle(det.azimuth_rad - pred.azimuth_rad);
            h[m] = jac[1];
            var[m] = sig.azimuth_rad * sig.azimuth_rad;
            m += 1;
        }
        nu[m] = wrap_angle(det.elevation_rad - pred.elevation_rad);
        h[m] = jac[2];
        var[m] = sig.elevation_rad * sig.elevation_rad;
        m += 1;
        if let Some(rr) = det.range_rate_mps {
            nu[m] = rr - pred.range_rate_mps;
            h[m] = jac[3];
            var[m] = sig.range_rate_mps * sig.range_rate_mps;
            m += 1;
        }

        // P H^T (n x m): H is zero past the first 6 columns.
        let mut pht = [[0.0; MAX_MEAS]; MAX_STATES];
        for (r, prow) in pht.iter_mut().enumerate().take(n) {
            for i in 0..m {
                let mut s = 0.0;
                for c in 0..6 {
                    s += self.p[r][c] * h[i][c];
                }
                prow[i] = s;
            }
        }
        // S = H P H^T + R.
        let mut s_mat = [[0.0; MAX_MEAS]; MAX_MEAS];
        for i in 0..m {
            for j in 0..m {
                let mut s = 0.0;
                for c in 0..6 {
                    s += h[i][c] * pht[c][j];
                }
                s_mat[i][j] = s;
            }
            s_mat[i][i] += var[i];
        }
        linalg::symmetrize_n(&mut s_mat, m);
        let Some(l) = linalg::cholesky_n(&s_mat, m) else {
            return UpdateOutcome::Skipped;
        };
        let mut w = nu;
        linalg::cholesky_solve_n(&l, m, &mut w);
        let nis: f64 = (0..m).map(|i| nu[i] * w[i]).sum();
        if !nis.is_finite() {
            return UpdateOutcome::Skipped;
        }
        if gate && nis > CHI2_999[m] {
            return UpdateOutcome::Rejected { nis, dof: m };
        }
        // K = P H^T S^-1 (row r solves S k_r = (P H^T)_r since S is symmetric).
        let mut kg = [[0.0; MAX_MEAS]; MAX_STATES];
        for r in 0..n {
            let mut row = pht[r];
            linalg::cholesky_solve_n(&l, m, &mut row);
            kg[r] = row;
        }
        for r in 0..n {
            let mut s = 0.0;
            for i in 0..m {
                s += kg[r][i] * nu[i];
            }
            self.x[r] += s;
        }
        // Joseph form: P <- A P A^T + K R K^T with A = I - K H.
        let mut a = [[0.0; MAX_STATES]; MAX_STATES];
        for r in 0..n {
            a[r][r] = 1.0;
            for c in 0..6 {
                let mut s = 0.0;
                for i in 0..m {
                    s += kg[r][i] * h[i][c];
                }
                a[r][c] -= s;
            }
        }
        let mut ap = [[0.0; MAX_STATES]; MAX_STATES];
        for r in 0..n {
            for c in 0..n {
                let mut s = 0.0;
                for j in 0..n {
                    s += a[r][j] * self.p[j][c];
                }
                ap[r][c] = s;
            }
        }
        for r in 0..n {
            for c in r..n {
                let mut s = 0.0;
                for j in 0..n {
                    s += ap[r][j] * a[c][j];
                }
                for i in 0..m {
                    s += kg[r][i] * var[i] * kg[c][i];
                }
                self.p[r][c] = s;
                self.p[c][r] = s;
            }
        }
        UpdateOutcome::Accepted { nis, dof: m }
    }
}
