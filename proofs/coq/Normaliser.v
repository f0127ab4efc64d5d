(* Normaliser.v -- the normaliser results behind exact eval-mode outputs of
   the exponential-LR run (the project's derivation for Li & Arora, ICLR
   2020, with BatchNorm / GroupNorm / LayerNorm / InstanceNorm).

   A normaliser acts on a group of n values x_0, ..., x_{n-1} (the axes it
   averages over: batch and space for BatchNorm, channels of a group for
   GroupNorm, ...):
       mean(x) = (1/n) sum_i x_i,     var(x) = (1/n) sum_i (x_i - mean(x))^2,
       N_eps(x)_j = (x_j - mean(x)) / sqrt(var(x) + eps),
   followed by an affine map y = w N + b.  PyTorch's running statistics are
   updated as  r <- (1 - mom) r + mom s  with the batch mean and the
   unbiased batch variance (n / (n-1) times var).
   Claims.
     [normaliser_eps]: m > 0 and var(x) + eps > 0: feeding m x with eps m^2
       gives exactly the same output, N_{eps m^2}(m x) = N_eps(x) (and the
       same after the affine map: [normaliser_eps_affine]).
     [running_stats_scaled]: if the exponential run's running statistics are
       (mu / c_t, s2 / c_t^2) and its normaliser input is x / c_t, then after
       PyTorch's update and the rescaling by c_t / c_{t+1} (mean) and
       (c_t / c_{t+1})^2 (variance) they are the weight-decay run's updated
       statistics divided by c_{t+1} and c_{t+1}^2.
     [eval_output_scaled]: the eval-mode output (x - mu) / sqrt(s2 + eps) is
       unchanged by (x, mu, s2, eps) -> (x / c, mu / c, s2 / c^2, eps / c^2)
       for c > 0: exact with eps = 0 or with eps scaled as stated.
     [var_nonneg], [normaliser_eps_pos]: var(x) >= 0, so [normaliser_eps]
       holds for every eps > 0 with no condition on x (used by
       NormaliserRun.v, which joins eps m^2 to the training theorem).

   Main theorems: [normaliser_eps], [running_stats_scaled], [eval_output_scaled].
   Corresponding SymPy module: proofs/normaliser_eps.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
Open Scope R_scope.

Fixpoint sum (n : nat) (f : nat -> R) : R :=
  match n with
  | O => 0
  | S m => sum m f + f m
  end.

Definition mean (n : nat) (x : nat -> R) : R := sum n x / INR n.

Definition var (n : nat) (x : nat -> R) : R :=
  sum n (fun i => (x i - mean n x) ^ 2) / INR n.

Definition var_unbiased (n : nat) (x : nat -> R) : R :=
  sum n (fun i => (x i - mean n x) ^ 2) / INR (n - 1).

Definition normalise (eps : R) (n : nat) (x : nat -> R) (j : nat) : R :=
  (x j - mean n x) / sqrt (var n x + eps).

Lemma sum_ext (n : nat) (f g : nat -> R) : (forall i, f i = g i) -> sum n f = sum n g.
Proof. intro H. induction n as [| n IH]; simpl; [reflexivity | rewrite IH, H; reflexivity]. Qed.

Lemma sum_scale (n : nat) (m : R) (f : nat -> R) : sum n (fun i => m * f i) = m * sum n f.
Proof. induction n as [| n IH]; simpl; [ring | rewrite IH; ring]. Qed.

Lemma mean_scale (n : nat) (m : R) (x : nat -> R) :
  mean n (fun i => m * x i) = m * mean n x.
Proof. unfold mean. rewrite sum_scale. unfold Rdiv. ring. Qed.

Lemma centred_sq_scale (n : nat) (m : R) (x : nat -> R) :
  sum n (fun i => (m * x i - mean n (fun i => m * x i)) ^ 2)
  = m ^ 2 * sum n (fun i => (x i - mean n x) ^ 2).
Proof.
  rewrite <- sum_scale. apply sum_ext. intro i. rewrite mean_scale. ring.
Qed.

Lemma var_scale (n : nat) (m : R) (x : nat -> R) :
  var n (fun i => m * x i) = m ^ 2 * var n x.
Proof. unfold var. rewrite centred_sq_scale. unfold Rdiv. ring. Qed.

Lemma var_unbiased_scale (n : nat) (m : R) (x : nat -> R) :
  var_unbiased n (fun i => m * x i) = m ^ 2 * var_unbiased n x.
Proof. unfold var_unbiased. rewrite centred_sq_scale. unfold Rdiv. ring. Qed.

Lemma sqrt_scale_sq (m y : R) : 0 < m -> sqrt (m ^ 2 * y) = m * sqrt y.
Proof.
  intro Hm. rewrite sqrt_mult_alt by (apply pow_le; lra).
  rewrite sqrt_pow2 by lra. reflexivity.
Qed.

(* Main theorem: m x with eps m^2 gives the same normalised output. *)
Theorem normaliser_eps (eps m : R) (n : nat) (x : nat -> R) (j : nat) :
  0 < m -> 0 < var n x + eps ->
  normalise (eps * m ^ 2) n (fun i => m * x i) j = normalise eps n x j.
Proof.
  intros Hm Hv. unfold normalise.
  rewrite mean_scale, var_scale.
  replace (m ^ 2 * var n x + eps * m ^ 2) with (m ^ 2 * (var n x + eps)) by ring.
  rewrite sqrt_scale_sq by exact Hm.
  pose proof (sqrt_lt_R0 _ Hv).
  field. split; lra.
Qed.

Corollary normaliser_eps_affine (eps m w b : R) (n : nat) (x : nat -> R) (j : nat) :
  0 < m -> 0 < var n x + eps ->
  w * normalise (eps * m ^ 2) n (fun i => m * x i) j + b = w * normalise eps n x j + b.
Proof. intros Hm Hv. rewrite normaliser_eps by assumption. reflexivity. Qed.

(* PyTorch's running-statistics update. *)
Definition running_update (mom r s : R) : R := (1 - mom) * r + mom * s.

(* Main theorem: running statistics scaled by c_t / c_{t+1} and its square. *)
Theorem running_stats_scaled (mom mu s2 c c' : R) (n : nat) (x : nat -> R) :
  0 < c -> 0 < c' ->
  running_update mom (mu / c) (mean n (fun i => / c * x i)) * (c / c')
  = running_update mom mu (mean n x) / c' /\
  running_update mom (s2 / c ^ 2) (var_unbiased n (fun i => / c * x i)) * (c / c') ^ 2
  = running_update mom s2 (var_unbiased n x) / c' ^ 2.
Proof.
  intros Hc Hc'. rewrite mean_scale, var_unbiased_scale. unfold running_update.
  split; field; split; lra.
Qed.

(* Main theorem: the eval-mode output with statistics and eps scaled. *)
Theorem eval_output_scaled (x mu s2 eps c : R) :
  0 < c -> 0 < s2 + eps ->
  (x / c - mu / c) / sqrt (s2 / c ^ 2 + eps / c ^ 2) = (x - mu) / sqrt (s2 + eps).
Proof.
  intros Hc Hv.
  replace (s2 / c ^ 2 + eps / c ^ 2) with ((/ c) ^ 2 * (s2 + eps)) by (field; lra).
  rewrite sqrt_scale_sq by (apply Rinv_0_lt_compat; exact Hc).
  pose proof (sqrt_lt_R0 _ Hv).
  field. split; lra.
Qed.

(* The variance is nonnegative (a sum of squares over n; Coq's / 0 = 0 for n = 0). *)
Lemma sum_nonneg (n : nat) (f : nat -> R) : (forall i, 0 <= f i) -> 0 <= sum n f.
Proof.
  intro H. induction n as [| n IH]; simpl; [lra |].
  pose proof (H n). lra.
Qed.

Lemma var_nonneg (n : nat) (x : nat -> R) : 0 <= var n x.
Proof.
  unfold var, Rdiv. apply Rmult_le_pos.
  - apply sum_nonneg. intro i. apply pow2_ge_0.
  - destruct n as [| n].
    + simpl. rewrite Rinv_0. lra.
    + left. apply Rinv_0_lt_compat, lt_0_INR. lia.
Qed.

(* [normaliser_eps] for every eps > 0, with no condition on the group x. *)
Corollary normaliser_eps_pos (eps m : R) (n : nat) (x : nat -> R) (j : nat) :
  0 < m -> 0 < eps ->
  normalise (eps * m ^ 2) n (fun i => m * x i) j = normalise eps n x j.
Proof.
  intros Hm He. apply normaliser_eps; [exact Hm |].
  pose proof (var_nonneg n x). lra.
Qed.
