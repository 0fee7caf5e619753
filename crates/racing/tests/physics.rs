//! The car against closed-form results: coast-down under drag and rolling
//! resistance, braking distance, the linear bicycle's steady yaw rate, the
//! top speed where drive equals resistance, and grip limits.

use hlynr_racing::car::{CarParams, CarState, Controls, G, advance};

const DT: f64 = 0.005;

fn straight(vx: f64) -> CarState {
    CarState {
        vx_mps: vx,
        gear: 2,
        ..CarState::default()
    }
}

fn run(p: &CarParams, s: &mut CarState, c: Controls, seconds: f64) {
    for _ in 0..(seconds / DT).round() as usize {
        advance(p, s, c, DT);
    }
}

/// `m dv/dt = -(k v^2 + c)`: `v(t) = sqrt(c/k) tan(atan(v0 sqrt(k/c)) - t sqrt(k c) / m)`.
#[test]
fn coast_down_follows_the_closed_form() {
    let p = CarParams::default();
    let k = 0.5 * 1.2 * p.drag_area_m2;
    let c = p.rolling_resistance * p.mass_kg * G;
    for (v0, t) in [(60.0, 5.0), (30.0, 10.0), (80.0, 2.0)] {
        let mut s = straight(v0);
        run(&p, &mut s, Controls::default(), t);
        let want =
            (c / k).sqrt() * ((v0 * (k / c).sqrt()).atan() - t * (k * c).sqrt() / p.mass_kg).tan();
        let rel = (s.vx_mps - want).abs() / want;
        assert!(rel < 2e-3, "v0 {v0}, t {t}: {} vs {want}", s.vx_mps);
        // Straight ahead, nothing turns.
        assert_eq!(
            (s.vy_mps, s.yaw_rate_rps, s.heading_rad, s.y_m),
            (0.0, 0.0, 0.0, 0.0)
        );
        let distance_want = p.mass_kg / k
            * ((v0 * (k / c).sqrt()).atan() - t * (k * c).sqrt() / p.mass_kg)
                .cos()
                .ln()
                .abs()
            - p.mass_kg / k * (v0 * (k / c).sqrt()).atan().cos().ln().abs();
        assert!(
            (s.x_m - distance_want).abs() / distance_want < 2e-3,
            "{} vs {distance_want}",
            s.x_m
        );
    }
}

/// Without drag or rolling resistance, full brake decelerates at `brake_g`
/// (the tyres' grip is not the limit with the default parameters):
/// stopping distance `v0^2 / (2 brake_g g)`.
#[test]
fn braking_distance_matches_constant_deceleration() {
    let p = CarParams {
        drag_area_m2: 0.0,
        rolling_resistance: 0.0,
        ..CarParams::default()
    };
    let brake = Controls {
        brake: 1.0,
        ..Controls::default()
    };
    for v0 in [10.0, 30.0, 50.0] {
        let mut s = straight(v0);
        let mut steps = 0;
        while s.vx_mps > 0.0 && steps < 100_000 {
            advance(&p, &mut s, brake, DT);
            steps += 1;
        }
        let want = v0 * v0 / (2.0 * p.brake_g * G);
        // Semi-implicit Euler lags the exact path by at most one step.
        assert!(
            (s.x_m - want).abs() <= v0 * DT,
            "v0 {v0}: {} m vs {want} m",
            s.x_m
        );
    }
    // Past the front tyres' grip the brakes lock no harder: a 3 g brake
    // stops in the distance of the grip-limited deceleration.
    let strong = CarParams {
        brake_g: 3.0,
        ..p.clone()
    };
    let mut s = straight(30.0);
    while s.vx_mps > 0.0 {
        advance(&strong, &mut s, brake, DT);
    }
    let l = p.front_axle_m + p.rear_axle_m;
    let decel = p.mu * G * p.rear_axle_m / l + p.mu * p.rear_grip_factor * G * p.front_axle_m / l;
    let want = 900.0 / (2.0 * decel);
    assert!((s.x_m - want).abs() <= 30.0 * DT, "{} m vs {want} m", s.x_m);
}

/// The linear bicycle at small slip: steady yaw rate `r = v delta / (L +
/// K v^2)` with understeer gradient `K = m (l_r / C_f - l_f / C_r) / L`.
#[test]
fn steady_cornering_matches_the_linear_bicycle() {
    let p = CarParams {
        drag_area_m2: 0.0,
        rolling_resistance: 0.0,
        ..CarParams::default()
    };
    let l = p.front_axle_m + p.rear_axle_m;
    let k_us = p.mass_kg
        * (p.rear_axle_m / p.cornering_stiffness_front
            - p.front_axle_m / p.cornering_stiffness_rear)
        / l;
    for (v, steer) in [(10.0, 0.05), (20.0, 0.02), (30.0, 0.01)] {
        let mut s = straight(v);
        let c = Controls {
            steer,
            ..Controls::default()
        };
        run(&p, &mut s, c, 3.0);
        let delta = steer * p.max_steer_rad;
        let want = s.vx_mps * delta / (l + k_us * s.vx_mps * s.vx_mps);
        let rel = (s.yaw_rate_rps - want).abs() / want;
        assert!(rel < 0.01, "v {v}: r {} vs {want}", s.yaw_rate_rps);
    }
}

/// Full throttle on an endless straight: the speed settles where the
/// drive force equals drag plus rolling resistance, in top gear.
#[test]
fn top_speed_is_where_drive_meets_resistance() {
    let p = CarParams::default();
    let mut s = straight(0.0);
    s.gear = 0;
    let gas = Controls {
        gas: 1.0,
        ..Controls::default()
    };
    run(&p, &mut s, gas, 200.0);
    let f = advance(&p, &mut s, gas, DT);
    assert_eq!(s.gear, p.gear_ratios.len() - 1);
    assert!(
        (f.drive_n - f.resistance_n).abs() / f.resistance_n < 0.01,
        "{f:?} at {} m/s",
        s.vx_mps
    );
    // Gears went up one by one and rpm stays below the redline.
    assert!(p.rpm(s.vx_mps, s.gear) <= p.redline_rpm);
}

/// However hard the car is thrown into a turn, the tyres' lateral forces
/// never exceed their grip, and a car above the grip slides (its path is
/// wider than the steering's geometric radius).
#[test]
fn tyre_forces_saturate_at_the_grip() {
    let p = CarParams::default();
    let l = p.front_axle_m + p.rear_axle_m;
    let front_grip = p.mu * p.mass_kg * G * p.rear_axle_m / l;
    let rear_grip = p.mu * p.rear_grip_factor * p.mass_kg * G * p.front_axle_m / l;
    let mut s = straight(40.0);
    let c = Controls {
        steer: 1.0,
        ..Controls::default()
    };
    let mut saturated = 0;
    for _ in 0..400 {
        let f = advance(&p, &mut s, c, DT);
        assert!(f.front_lateral_n.abs() <= front_grip + 1e-6, "{f:?}");
        assert!(f.rear_lateral_n.abs() <= rear_grip + 1e-6, "{f:?}");
        saturated += usize::from(f.front_lateral_n.abs() > 0.95 * front_grip);
    }
    assert!(saturated > 100, "{saturated}");
    let geometric = s.vx_mps * (p.max_steer_rad).tan() / l;
    assert!(
        s.yaw_rate_rps.abs() < geometric,
        "{} vs {geometric}",
        s.yaw_rate_rps
    );
}

#[test]
fn bad_parameters_are_named() {
    let bad = CarParams {
        mu: -1.0,
        ..CarParams::default()
    };
    assert!(bad.validate().unwrap_err().contains("car.mu"));
    let bad = CarParams {
        gear_ratios: vec![],
        ..CarParams::default()
    };
    assert!(bad.validate().unwrap_err().contains("gear_ratios"));
    let bad = CarParams {
        upshift_rpm: 1000.0,
        ..CarParams::default()
    };
    assert!(bad.validate().unwrap_err().contains("rpm"));
}
