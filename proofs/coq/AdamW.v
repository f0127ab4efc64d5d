(* AdamW.v -- PyTorch's AdamW on a scale-invariant parameter set is exactly
   stock Adam without weight decay with per-step LR, eps and betas (the
   project's extension of Li & Arora, ICLR 2020, to AdamW).

   torch.optim.AdamW, step k = 1, 2, ... (amsgrad = False, maximize = False),
   per coordinate, with g_k = G_k(theta_{k-1}) and the step's eta, lambda,
   beta1, beta2, eps:
       theta <- (1 - eta lambda) theta_{k-1}
       m_k = beta1 m_{k-1} + (1 - beta1) g_k,  v_k = beta2 v_{k-1} + (1 - beta2) g_k^2
       theta_k = theta - eta / bc1_k * m_k / (sqrt(v_k) / sqrt(bc2_k) + eps)
   with PyTorch's bias corrections bc1_k = 1 - beta1^k, bc2_k = 1 - beta2^k.
   torch.optim.Adam without weight decay is the same with lambda = 0.

   The map (no state is rewritten):
       a_k = 1 - eta_k lambda_k,  A_k = a_1 ... a_k  (A_0 = 1),
       nu_k = beta1_k nu_{k-1} + (1 - beta1_k) / A_{k-1},
       s_k  = beta2_k s_{k-1} + (1 - beta2_k) / A_{k-1}^2,   nu_0 = s_0 = 1,
       beta1~_k = beta1_k nu_{k-1} / nu_k,   beta2~_k = beta2_k s_{k-1} / s_k,
       bc1~_k = 1 - beta1~_k^k,  bc2~_k = 1 - beta2~_k^k   (Adam's own),
       eps~_k = eps_k sqrt(bc2_k) / sqrt(s_k bc2~_k),
       eta~_k = eta_k (nu_k / A_k) sqrt(bc2_k) bc1~_k / (bc1_k sqrt(s_k bc2~_k)).
   Claim [adamw_equivalence]: from the same theta_0 and zero buffers,
       theta~_k = theta_k / A_k,  m~_k = m_k / nu_k,  v~_k = v_k / s_k
   for every k, given a homogeneous gradient of degree -1, a_k > 0 and
   0 <= beta1_k, beta2_k < 1 (PyTorch's own range); then beta~ is in [0, 1)
   too and every bias correction is positive ([bias_pos]).  Any eps >= 0,
   eps = 0 included (a zero denominator gives 0 in both runs alike).
   [adam_coord] is the one-step invariant on one coordinate.

   Main theorem: [adamw_equivalence].
   Corresponding SymPy module: proofs/adamw.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec.
Open Scope R_scope.

(* One coordinate of one step: the moment updates and the parameter update
   (decoupled decay, then param.addcdiv_(m, denom, value = -lr / bc1)). *)
Definition mstep (b1 m g : R) : R := b1 * m + (1 - b1) * g.
Definition vstep (b2 v g : R) : R := b2 * v + (1 - b2) * (g * g).
Definition thstep (lr wd eps bc1 bc2 th m' v' : R) : R :=
  (1 - lr * wd) * th - lr / bc1 * (m' / (sqrt v' / sqrt bc2 + eps)).

(* The one-step invariant on one coordinate. *)
Lemma adam_coord (A0 a nu0 nu1 s0 s1 b1 b2 bt1 bt2 lr wd eps lrt epst
                  bc1 bc2 bct1 bct2 th m v g : R) :
  0 < A0 -> 0 < a -> a = 1 - lr * wd ->
  0 < nu0 -> 0 < nu1 -> 0 < s0 -> 0 < s1 ->
  nu1 = b1 * nu0 + (1 - b1) / A0 -> s1 = b2 * s0 + (1 - b2) / A0 ^ 2 ->
  0 < bc1 -> 0 < bc2 -> 0 < bct1 -> 0 < bct2 ->
  bt1 = b1 * nu0 / nu1 -> bt2 = b2 * s0 / s1 ->
  epst = eps * sqrt bc2 / sqrt (s1 * bct2) ->
  lrt = lr * (nu1 / (a * A0)) * sqrt bc2 * bct1 / (bc1 * sqrt (s1 * bct2)) ->
  mstep bt1 (/ nu0 * m) (A0 * g) = / nu1 * mstep b1 m g /\
  vstep bt2 (/ s0 * v) (A0 * g) = / s1 * vstep b2 v g /\
  thstep lrt 0 epst bct1 bct2 (/ A0 * th)
         (mstep bt1 (/ nu0 * m) (A0 * g)) (vstep bt2 (/ s0 * v) (A0 * g))
  = / (a * A0) * thstep lr wd eps bc1 bc2 th (mstep b1 m g) (vstep b2 v g).
Proof.
  intros HA Ha Hawd Hnu0 Hnu1 Hs0 Hs1 Hnu Hs Hbc1 Hbc2 Hbct1 Hbct2 Hbt1 Hbt2 Heps Hlr.
  assert (Hm : mstep bt1 (/ nu0 * m) (A0 * g) = / nu1 * mstep b1 m g).
  { unfold mstep. rewrite Hbt1.
    assert (E1 : 1 - b1 * nu0 / nu1 = (nu1 - b1 * nu0) / nu1) by (field; lra).
    assert (E2 : nu1 - b1 * nu0 = (1 - b1) / A0) by (rewrite Hnu; ring).
    rewrite E1, E2. field. split; lra. }
  assert (Hv : vstep bt2 (/ s0 * v) (A0 * g) = / s1 * vstep b2 v g).
  { unfold vstep. rewrite Hbt2.
    assert (E1 : 1 - b2 * s0 / s1 = (s1 - b2 * s0) / s1) by (field; lra).
    assert (E2 : s1 - b2 * s0 = (1 - b2) / A0 ^ 2) by (rewrite Hs; ring).
    rewrite E1, E2. field. split; lra. }
  split; [exact Hm | split; [exact Hv |]].
  rewrite Hm, Hv. unfold thstep.
  set (m' := mstep b1 m g). set (v' := vstep b2 v g).
  pose proof (sqrt_lt_R0 _ Hs1) as HS.
  pose proof (sqrt_lt_R0 _ Hbc2) as HP.
  pose proof (sqrt_lt_R0 _ Hbct2) as HQ.
  (* the denominator of the Adam run is K times the AdamW run's *)
  assert (Hden : sqrt (/ s1 * v') / sqrt bct2 + epst
                 = sqrt bc2 / (sqrt s1 * sqrt bct2) * (sqrt v' / sqrt bc2 + eps)).
  { rewrite sqrt_mult_alt by (left; apply Rinv_0_lt_compat; exact Hs1).
    rewrite sqrt_inv, Heps.
    rewrite sqrt_mult_alt by lra. field. repeat split; lra. }
  rewrite Hden, Hlr, <- Hawd.
  rewrite sqrt_mult_alt by lra.
  unfold Rdiv. rewrite !Rinv_mult.
  set (u := / (sqrt v' * / sqrt bc2 + eps)).
  field. repeat split; lra.
Qed.

Section AdamWRun.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* G_k: gradient map of step k + 1 *)
Variables eta lam beta1 beta2 eps : nat -> R. (* hyper-parameters of step k >= 1 *)
Variable theta0 : vec I.

Definition a (k : nat) : R := 1 - eta k * lam k.

Fixpoint A (k : nat) : R :=
  match k with
  | O => 1
  | S k' => a (S k') * A k'
  end.

Fixpoint nu (k : nat) : R :=
  match k with
  | O => 1
  | S k' => beta1 (S k') * nu k' + (1 - beta1 (S k')) / A k'
  end.

Fixpoint sg (k : nat) : R :=
  match k with
  | O => 1
  | S k' => beta2 (S k') * sg k' + (1 - beta2 (S k')) / A k' ^ 2
  end.

Definition beta1t (k : nat) : R :=
  match k with
  | O => beta1 O
  | S k' => beta1 k * nu k' / nu k
  end.

Definition beta2t (k : nat) : R :=
  match k with
  | O => beta2 O
  | S k' => beta2 k * sg k' / sg k
  end.

(* PyTorch's bias corrections, with the step's betas and the step count. *)
Definition bc1 (k : nat) : R := 1 - beta1 k ^ k.
Definition bc2 (k : nat) : R := 1 - beta2 k ^ k.
Definition bct1 (k : nat) : R := 1 - beta1t k ^ k.
Definition bct2 (k : nat) : R := 1 - beta2t k ^ k.

Definition epst (k : nat) : R := eps k * sqrt (bc2 k) / sqrt (sg k * bct2 k).

Definition lrt (k : nat) : R :=
  eta k * (nu k / A k) * sqrt (bc2 k) * bct1 k / (bc1 k * sqrt (sg k * bct2 k)).

(* One step of torch.optim.AdamW (wd = lambda) or torch.optim.Adam (wd = 0)
   on the state (theta, m, v). *)
Definition adam_step (g : vec I -> vec I) (lr wd b1 b2 ep c1 c2 : R)
    (st : vec I * vec I * vec I) : vec I * vec I * vec I :=
  let th := fst (fst st) in
  let gr := g th in
  let m' := fun i => mstep b1 (snd (fst st) i) (gr i) in
  let v' := fun i => vstep b2 (snd st i) (gr i) in
  (fun i => thstep lr wd ep c1 c2 (th i) (m' i) (v' i), m', v').

Fixpoint adamw_run (k : nat) : vec I * vec I * vec I :=
  match k with
  | O => (theta0, vzero, vzero)
  | S k' => adam_step (G k') (eta (S k')) (lam (S k')) (beta1 (S k')) (beta2 (S k'))
                      (eps (S k')) (bc1 (S k')) (bc2 (S k')) (adamw_run k')
  end.

Fixpoint adam_run (k : nat) : vec I * vec I * vec I :=
  match k with
  | O => (theta0, vzero, vzero)
  | S k' => adam_step (G k') (lrt (S k')) 0 (beta1t (S k')) (beta2t (S k'))
                      (epst (S k')) (bct1 (S k')) (bct2 (S k')) (adam_run k')
  end.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis a_pos : forall k, 0 < a k.
Hypothesis beta1_range : forall k, 0 <= beta1 k < 1.
Hypothesis beta2_range : forall k, 0 <= beta2 k < 1.

Lemma A_pos (k : nat) : 0 < A k.
Proof.
  induction k as [| k IH]; simpl; [lra |]. apply Rmult_lt_0_compat; [apply a_pos | exact IH].
Qed.

Lemma mix_pos (b x y : R) : 0 <= b < 1 -> 0 < x -> 0 < y -> 0 < b * x + (1 - b) / y.
Proof.
  intros Hb Hx Hy. pose proof (Rinv_0_lt_compat y Hy) as Hiy. unfold Rdiv.
  destruct (Rle_lt_or_eq_dec 0 b (proj1 Hb)) as [Hb0 | Hb0].
  - assert (0 < b * x) by (apply Rmult_lt_0_compat; lra).
    assert (0 <= (1 - b) * / y) by (apply Rmult_le_pos; lra). lra.
  - subst b. rewrite Rmult_0_l, Rminus_0_r, Rmult_1_l. lra.
Qed.

Lemma nu_pos (k : nat) : 0 < nu k.
Proof.
  induction k as [| k IH]; simpl; [lra |]. apply mix_pos; auto using A_pos.
Qed.

Lemma sg_pos (k : nat) : 0 < sg k.
Proof.
  induction k as [| k IH]; cbn [sg]; [lra |].
  apply mix_pos; auto. apply pow_lt, A_pos.
Qed.

(* The converted betas stay in [0, 1): beta~ = beta nu_{k-1} / nu_k with
   nu_k = beta nu_{k-1} + (1 - beta) / A_{k-1} > beta nu_{k-1}. *)
Lemma ratio_range (b x y : R) :
  0 <= b < 1 -> 0 < x -> 0 < y -> 0 <= b * x / (b * x + (1 - b) / y) < 1.
Proof.
  intros Hb Hx Hy.
  assert (Hq : 0 < (1 - b) / y) by (apply Rdiv_lt_0_compat; lra).
  assert (Hbx : 0 <= b * x) by (apply Rmult_le_pos; lra).
  split.
  - apply Rmult_le_pos; [exact Hbx | left; apply Rinv_0_lt_compat; lra].
  - apply (Rmult_lt_reg_r (b * x + (1 - b) / y)); [lra |].
    unfold Rdiv. rewrite Rmult_assoc, Rinv_l by lra. lra.
Qed.

Lemma bias_correction_pos (b : R) (k : nat) : 0 <= b < 1 -> 0 < 1 - b ^ S k.
Proof. intro Hb. pose proof (pow_lt_1_compat b (S k) Hb ltac:(lia)). lra. Qed.

(* PyTorch's bias corrections are positive in both runs. *)
Lemma bias_pos (k : nat) :
  0 < bc1 (S k) /\ 0 < bc2 (S k) /\ 0 < bct1 (S k) /\ 0 < bct2 (S k).
Proof.
  unfold bc1, bc2, bct1, bct2, beta1t, beta2t.
  repeat split; apply bias_correction_pos; auto.
  - cbn [nu]. apply ratio_range; auto using nu_pos, A_pos.
  - cbn [sg]. apply ratio_range; auto using sg_pos. apply pow_lt, A_pos.
Qed.

(* Main theorem: theta~_k = theta_k / A_k, m~_k = m_k / nu_k, v~_k = v_k / s_k. *)
Theorem adamw_equivalence (k : nat) :
  fst (fst (adam_run k)) = vscale (/ A k) (fst (fst (adamw_run k))) /\
  snd (fst (adam_run k)) = vscale (/ nu k) (snd (fst (adamw_run k))) /\
  snd (adam_run k) = vscale (/ sg k) (snd (adamw_run k)).
Proof.
  induction k as [| k IH].
  - simpl. rewrite Rinv_1, !vscale_1. repeat split.
  - destruct IH as [Hth [Hm Hv]].
    cbn [adam_run adamw_run].
    destruct (adamw_run k) as [[th m] v].
    destruct (adam_run k) as [[tht mt] vt].
    cbn [fst snd] in Hth, Hm, Hv. subst tht mt vt.
    unfold adam_step. cbn [fst snd].
    rewrite (homogeneous_at_inv G k (A k) th G_homogeneous (A_pos k)).
    destruct (bias_pos k) as [H1 [H2 [H3 H4]]].
    assert (Hc : forall i,
      mstep (beta1t (S k)) (/ nu k * m i) (A k * G k th i) = / nu (S k) * mstep (beta1 (S k)) (m i) (G k th i) /\
      vstep (beta2t (S k)) (/ sg k * v i) (A k * G k th i) = / sg (S k) * vstep (beta2 (S k)) (v i) (G k th i) /\
      thstep (lrt (S k)) 0 (epst (S k)) (bct1 (S k)) (bct2 (S k)) (/ A k * th i)
             (mstep (beta1t (S k)) (/ nu k * m i) (A k * G k th i))
             (vstep (beta2t (S k)) (/ sg k * v i) (A k * G k th i))
      = / (a (S k) * A k) * thstep (eta (S k)) (lam (S k)) (eps (S k)) (bc1 (S k)) (bc2 (S k))
                                   (th i) (mstep (beta1 (S k)) (m i) (G k th i))
                                   (vstep (beta2 (S k)) (v i) (G k th i))).
    { intro i. apply adam_coord; auto using A_pos, nu_pos, sg_pos; reflexivity. }
    unfold vscale. cbn [A].
    repeat split; apply functional_extensionality; intro i; apply Hc.
Qed.

End AdamWRun.
