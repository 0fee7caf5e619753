//! Steps one scenario tier for a number of decisions, for profiling with
//! `perf record -g` and for quick throughput numbers.
//!
//! `cargo run --release -p hlynr-intercept --example profile_env -- [tier] [decisions] [policy]`
//! with `policy` one of `zero` (default) or a baseline name such as `zem-pn`.

use std::time::Instant;

use hlynr_env::{Env, Info, PolicyInput};
use hlynr_intercept::{InterceptEnv, ScenarioConfig, make_policy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let tier = args.get(1).map_or("medium", String::as_str);
    let decisions: u64 = match args.get(2) {
        Some(s) => s.parse()?,
        None => 2_000_000,
    };
    let policy_name = args.get(3).map_or("zero", String::as_str);

    let config = ScenarioConfig::load(tier)?;
    let mut env = InterceptEnv::new(&config)?;
    let mut policy = make_policy(policy_name, &config)?;
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    let mut view = vec![0.0f64; env.controller_view_dim()];
    let mut action = vec![0.0f32; env.action_space().flat_dim()];
    let mut info = Info::default();
    env.reset(Some(0), (&mut obs).into(), &mut info).unwrap();
    policy.reset_rows(&[0]);

    let start = Instant::now();
    let mut reset_s = 0.0;
    let mut policy_s = 0.0;
    let mut episodes = 0u64;
    let mut successes = 0u64;
    // Episode ends by reason code (none, cpa, ground, leak, energy, timeout).
    let mut reasons = [0u64; 6];
    let mut median_miss = Vec::new();
    // Order-sensitive digest of rewards and observations, to compare builds.
    let mut digest = 0u64;
    let mut mix = |x: f64| digest = (digest ^ x.to_bits()).wrapping_mul(0x0100_0000_01b3);
    for _ in 0..decisions {
        let p = Instant::now();
        env.write_controller_view(&mut view);
        let input = PolicyInput {
            n: 1,
            obs: &obs,
            obs_bytes: &[],
            controller_view: &view,
        };
        policy.act(&input, true, &mut action)?;
        policy_s += p.elapsed().as_secs_f64();
        info.clear();
        let step = env.step(&action, (&mut obs).into(), &mut info).unwrap();
        mix(step.reward);
        obs.iter().for_each(|&x| mix(f64::from(x)));
        if step.done() {
            episodes += 1;
            successes += u64::from(info.is_success == Some(true));
            let reason = info.get("termination_reason").unwrap_or(0.0) as usize;
            reasons[reason.min(reasons.len() - 1)] += 1;
            median_miss.push(info.get("miss_distance_m").unwrap_or(f64::NAN));
            let r = Instant::now();
            info.clear();
            env.reset(None, (&mut obs).into(), &mut info).unwrap();
            policy.reset_rows(&[0]);
            reset_s += r.elapsed().as_secs_f64();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    median_miss.sort_by(f64::total_cmp);
    let median_miss = median_miss.get(median_miss.len() / 2).copied();
    let stepping = secs - reset_s - policy_s;
    println!(
        "{tier} {policy_name}: {decisions} decisions in {secs:.2} s: {:.0} decisions/s overall, \
         {:.0} decisions/s env stepping only, {episodes} episodes ({:.1} us per reset), \
         policy {:.2} us per decision, success {:.1} %, median miss {median_miss:.1?} m, \
         ends [none,cpa,ground,leak,energy,timeout] {reasons:?}, digest {digest:016x}",
        decisions as f64 / secs,
        decisions as f64 / stepping,
        1e6 * reset_s / episodes.max(1) as f64,
        1e6 * policy_s / decisions as f64,
        100.0 * successes as f64 / episodes.max(1) as f64
    );
    Ok(())
}
