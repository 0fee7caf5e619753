//! Network-engine workloads W1-W4.

use hlynr_nn::distributions::DiagGaussian;
use hlynr_nn::loss::mse_loss;
use hlynr_nn::lstm::Lstm;
use hlynr_nn::optim::{Adam, AdamKind};
use hlynr_nn::{
    Conv2d, Conv2dSpec, Flatten, Layer, Linear, NamedParamMut, Param, ReLU, Sequential, Tanh,
    Tensor, clip::clip_grad_norm,
};
use hlynr_rng::Rng;

fn random_tensor(shape: &[usize], rng: &mut Rng) -> Tensor {
    let mut t = Tensor::zeros(shape);
    rng.fill_normal_f32(t.data_mut());
    t
}

/// `sizes[0] -> sizes[1] -> ...` with tanh between the linear layers.
pub fn tanh_mlp(sizes: &[usize], rng: &mut Rng) -> Sequential {
    let mut net = Sequential::new();
    for (i, w) in sizes.windows(2).enumerate() {
        net.push(Linear::new(w[0], w[1], rng));
        if i + 2 < sizes.len() {
            net.push(Tanh::new());
        }
    }
    net
}

fn names(params: &[NamedParamMut<'_>]) -> Vec<String> {
    params.iter().map(|(n, _)| n.clone()).collect()
}

/// W1: one PPO minibatch update of an actor MLP 32-128-128-3 (diagonal
/// Gaussian, clipped surrogate) and a critic MLP 32-128-128-1 (MSE), batch 512,
/// with global-norm clipping and Adam over all parameters.
#[derive(Debug)]
pub struct PpoUpdate {
    actor: Sequential,
    critic: Sequential,
    log_std: Param,
    opt: Adam,
    obs: Tensor,
    actions: Tensor,
    old_log_prob: Vec<f32>,
    advantages: Vec<f32>,
    returns: Tensor,
    log_prob: Vec<f32>,
    d_log_prob: Vec<f32>,
    grad_mean: Tensor,
    grad_value: Tensor,
}

impl PpoUpdate {
    /// Batch size of the workload.
    pub const BATCH: usize = 512;

    /// Builds the networks and a fixed random minibatch.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let actor = tanh_mlp(&[32, 128, 128, 3], &mut rng);
        let critic = tanh_mlp(&[32, 128, 128, 1], &mut rng);
        let n = Self::BATCH;
        let mut me = Self {
            actor,
            critic,
            log_std: Param::trainable(Tensor::zeros(&[3])),
            opt: Adam::single_group(AdamKind::Adam, Vec::<String>::new(), 3e-4, 0.0)
                .expect("valid optimizer"),
            obs: random_tensor(&[n, 32], &mut rng),
            actions: random_tensor(&[n, 3], &mut rng),
            old_log_prob: (0..n).map(|_| -3.0 + 0.1 * rng.normal_f32()).collect(),
            advantages: (0..n).map(|_| rng.normal_f32()).collect(),
            returns: random_tensor(&[n, 1], &mut rng),
            log_prob: vec![0.0; n],
            d_log_prob: vec![0.0; n],
            grad_mean: Tensor::zeros(&[n, 3]),
            grad_value: Tensor::zeros(&[n, 1]),
        };
        let params = me.params();
        let all = names(&params);
        drop(params);
        me.opt = Adam::single_group(AdamKind::Adam, all, 3e-4, 0.0).expect("valid optimizer");
        me
    }

    fn params(&mut self) -> Vec<NamedParamMut<'_>> {
        ppo_params(&mut self.actor, &mut self.critic, &mut self.log_std)
    }

    /// One forward, loss, backward, clip and Adam step.
    pub fn step(&mut self) {
        for (_, p) in self.params() {
            p.zero_grad();
        }
        let n = Self::BATCH as f32;
        // Actor: clipped surrogate on a diagonal Gaussian.
        let mean = self.actor.forward(&self.obs).expect("actor forward");
        let dist = DiagGaussian::new(mean, &self.log_std.value).expect("distribution");
        dist.log_prob(&self.actions, &mut self.log_prob)
            .expect("log_prob");
        for i in 0..Self::BATCH {
            let ratio = (self.log_prob[i] - self.old_log_prob[i]).exp();
            let adv = self.advantages[i];
            let clipped = ratio.clamp(0.8, 1.2);
            // d(-min(r A, clip(r) A))/d log_prob = -r A when the unclipped term is active.
            self.d_log_prob[i] = if ratio * adv <= clipped * adv {
                -ratio * adv / n
            } else {
                0.0
            };
        }
        self.grad_mean.fill_zero();
        dist.backward(
            &self.actions,
            Some(&self.d_log_prob),
            None,
            &mut self.grad_mean,
            &mut self.log_std.grad,
        )
        .expect("distribution backward");
        self.actor
            .backward(&self.obs, &self.grad_mean, false)
            .expect("actor backward");
        // Critic: MSE to the returns.
        let value = self.critic.forward(&self.obs).expect("critic forward");
        mse_loss(value, &self.returns, None, None, &mut self.grad_value).expect("mse");
        for g in self.grad_value.data_mut() {
            *g *= 0.5;
        }
        self.critic
            .backward(&self.obs, &self.grad_value, false)
            .expect("critic backward");
        let mut params = ppo_params(&mut self.actor, &mut self.critic, &mut self.log_std);
        clip_grad_norm(params.iter_mut().map(|(_, p)| &mut **p), 0.5).expect("clip");
        self.opt.step(&mut params).expect("adam step");
    }
}

fn ppo_params<'a>(
    actor: &'a mut Sequential,
    critic: &'a mut Sequential,
    log_std: &'a mut Param,
) -> Vec<NamedParamMut<'a>> {
    let mut ps = Vec::new();
    actor.params_mut("actor.", &mut ps);
    critic.params_mut("critic.", &mut ps);
    ps.push(("log_std".to_string(), log_std));
    ps
}

/// W2: the policy MLP 32-128-128-3 forward pass at a given batch size (the
/// rollout path).
#[derive(Debug)]
pub struct PolicyForward {
    actor: Sequential,
    obs: Tensor,
}

impl PolicyForward {
    /// The network and a random observation batch of `batch` rows.
    pub fn new(batch: usize, seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        Self {
            actor: tanh_mlp(&[32, 128, 128, 3], &mut rng),
            obs: random_tensor(&[batch, 32], &mut rng),
        }
    }

    /// One forward pass; returns the first output so it is not optimised away.
    pub fn step(&mut self) -> f32 {
        self.actor.forward(&self.obs).expect("forward").data()[0]
    }
}

/// W3: LSTM(32 -> 128) over a sequence of 32 steps, batch 16, a linear head
/// (128 -> 4) with an MSE loss, full BPTT and an Adam step.
#[derive(Debug)]
pub struct LstmUpdate {
    lstm: Lstm,
    head: Linear,
    opt: Adam,
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    target: Tensor,
    grad_out: Tensor,
    hidden_rows: Tensor,
    grad_hidden: Tensor,
}

impl LstmUpdate {
    /// Sequence length.
    pub const SEQ: usize = 32;
    /// Batch (parallel sequences).
    pub const BATCH: usize = 16;

    /// Builds the network and a fixed random batch.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let (t, b) = (Self::SEQ, Self::BATCH);
        let mut me = Self {
            lstm: Lstm::new(32, 128, &mut rng),
            head: Linear::new(128, 4, &mut rng),
            opt: Adam::single_group(AdamKind::Adam, Vec::<String>::new(), 3e-4, 0.0)
                .expect("valid optimizer"),
            x: random_tensor(&[t, b, 32], &mut rng),
            h0: Tensor::zeros(&[b, 128]),
            c0: Tensor::zeros(&[b, 128]),
            target: random_tensor(&[t * b, 4], &mut rng),
            grad_out: Tensor::zeros(&[t * b, 4]),
            hidden_rows: Tensor::default(),
            grad_hidden: Tensor::default(),
        };
        let all = names(&me.params());
        me.opt = Adam::single_group(AdamKind::Adam, all, 3e-4, 0.0).expect("valid optimizer");
        me
    }

    fn params(&mut self) -> Vec<NamedParamMut<'_>> {
        lstm_params(&mut self.lstm, &mut self.head)
    }

    /// Forward over the sequence, loss, BPTT and an Adam step.
    pub fn step(&mut self) {
        for (_, p) in self.params() {
            p.zero_grad();
        }
        let (t, b) = (Self::SEQ, Self::BATCH);
        let hs = self
            .lstm
            .forward_sequence(&self.x, &self.h0, &self.c0, None)
            .expect("lstm forward");
        self.hidden_rows.copy_from(hs);
        self.hidden_rows.reshape(&[t * b, 128]).expect("same size");
        let y = self.head.forward(&self.hidden_rows).expect("head forward");
        mse_loss(y, &self.target, None, None, &mut self.grad_out).expect("mse");
        let dh = self
            .head
            .backward(&self.hidden_rows, &self.grad_out, true)
            .expect("head backward");
        self.grad_hidden.copy_from(dh);
        self.grad_hidden.reshape(&[t, b, 128]).expect("same size");
        self.lstm
            .backward_sequence(&self.grad_hidden, None, None, false)
            .expect("lstm backward");
        let mut params = lstm_params(&mut self.lstm, &mut self.head);
        self.opt.step(&mut params).expect("adam step");
    }
}

fn lstm_params<'a>(lstm: &'a mut Lstm, head: &'a mut Linear) -> Vec<NamedParamMut<'a>> {
    let mut ps = Vec::new();
    lstm.params_mut("lstm.", &mut ps);
    head.params_mut("head.", &mut ps);
    ps
}

/// W4: conv 4->8 (k8 s4), conv 8->16 (k4 s2), dense 128, 12 outputs, ReLU,
/// on 64x64x4 frames, batch 32: forward, MSE, backward and an Adam step.
#[derive(Debug)]
pub struct ConvUpdate {
    net: Sequential,
    opt: Adam,
    x: Tensor,
    target: Tensor,
    grad_out: Tensor,
}

impl ConvUpdate {
    /// Batch size.
    pub const BATCH: usize = 32;

    /// Builds the network and a fixed random batch.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let net = Sequential::new()
            .with(Conv2d::new(Conv2dSpec::new(4, 8, 8, 4), &mut rng).expect("valid conv"))
            .with(ReLU::new())
            .with(Conv2d::new(Conv2dSpec::new(8, 16, 4, 2), &mut rng).expect("valid conv"))
            .with(ReLU::new())
            .with(Flatten::new())
            .with(Linear::new(16 * 6 * 6, 128, &mut rng))
            .with(ReLU::new())
            .with(Linear::new(128, 12, &mut rng));
        let mut me = Self {
            net,
            opt: Adam::single_group(AdamKind::Adam, Vec::<String>::new(), 1e-4, 0.0)
                .expect("valid optimizer"),
            x: random_tensor(&[Self::BATCH, 4, 64, 64], &mut rng),
            target: random_tensor(&[Self::BATCH, 12], &mut rng),
            grad_out: Tensor::zeros(&[Self::BATCH, 12]),
        };
        let mut ps = Vec::new();
        me.net.params_mut("", &mut ps);
        let all = names(&ps);
        me.opt = Adam::single_group(AdamKind::Adam, all, 1e-4, 0.0).expect("valid optimizer");
        me
    }

    /// Forward, loss, backward and an Adam step.
    pub fn step(&mut self) {
        self.net.zero_grad();
        let y = self.net.forward(&self.x).expect("forward");
        mse_loss(y, &self.target, None, None, &mut self.grad_out).expect("mse");
        self.net
            .backward(&self.x, &self.grad_out, false)
            .expect("backward");
        let mut ps = Vec::new();
        self.net.params_mut("", &mut ps);
        self.opt.step(&mut ps).expect("adam step");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trainable_values(params: Vec<NamedParamMut<'_>>) -> Vec<f32> {
        params
            .into_iter()
            .flat_map(|(_, p)| p.value.data().to_vec())
            .collect()
    }

    #[test]
    fn every_workload_changes_its_weights_deterministically() {
        let mut a = PpoUpdate::new(0);
        let mut b = PpoUpdate::new(0);
        let before = trainable_values(a.params());
        a.step();
        b.step();
        let after = trainable_values(a.params());
        assert_ne!(before, after);
        assert_eq!(after, trainable_values(b.params()));

        let mut l = LstmUpdate::new(0);
        let before = trainable_values(l.params());
        l.step();
        assert_ne!(before, trainable_values(l.params()));

        let mut c = ConvUpdate::new(0);
        let mut ps = Vec::new();
        c.net.params_mut("", &mut ps);
        let before = trainable_values(ps);
        c.step();
        let mut ps = Vec::new();
        c.net.params_mut("", &mut ps);
        assert_ne!(before, trainable_values(ps));

        let mut f = PolicyForward::new(16, 0);
        assert!(f.step().is_finite());
    }
}
