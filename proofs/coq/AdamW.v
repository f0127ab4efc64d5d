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

   maximize = True (the moments see -g_k): the same map, the same claim
   [adamw_maximize_equivalence], a corollary, since -G is homogeneous of
   degree -1 whenever G is.  amsgrad = True (the step divides by
   sqrt(vmax_k) / sqrt(bc2_k) + eps, vmax_k = max(vmax_{k-1}, v_k)): the same
   map plus the library's one buffer rewrite per step (the converted run's
   stored maximum multiplied by s_{k-1} / s_k before step k); then also
   vmax~_k = vmax_k / s_k [adamw_amsgrad_equivalence], because max commutes
   with a positive scaling [Rmax_scale]; [adam_ams_coord] is its one-step
   invariant on one coordinate.

   Main theorems: [adamw_equivalence], [adamw_maximize_equivalence],
   [adamw_amsgrad_equivalence].
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

(* ------------------------------------------------------------------ *)
(* maximize = True: torch.optim.AdamW(maximize=True) and torch.optim.Adam
   (maximize=True) feed -g_k to the moments instead of g_k; nothing else
   changes.  Both runs of the maximize case are written out below
   ([adamw_max_run], [adam_max_run], same map, same zero buffers); they are
   the runs of adamw_equivalence for the gradient map -G ([max_run_neg]),
   which is homogeneous of degree -1 whenever G is ([neg_grad_homogeneous]),
   so [adamw_maximize_equivalence] is a corollary. *)

Section AdamWMaximize.

Variable I : Type.
Variable G : nat -> vec I -> vec I.
Variables eta lam beta1 beta2 eps : nat -> R.
Variable theta0 : vec I.

(* The gradient map of the maximize run: -G. *)
Definition neg_grad (t : nat) (x : vec I) : vec I := fun i => - G t x i.

Lemma neg_grad_homogeneous : homogeneous_m1 G -> homogeneous_m1 neg_grad.
Proof.
  intros Hhom t c x Hc. apply functional_extensionality; intro i.
  unfold neg_grad. rewrite (Hhom t c x Hc). unfold vscale. ring.
Qed.

(* One step with maximize = True: the moments see -g. *)
Definition adam_step_max (g : vec I -> vec I) (lr wd b1 b2 ep c1 c2 : R)
    (st : vec I * vec I * vec I) : vec I * vec I * vec I :=
  let th := fst (fst st) in
  let gr := g th in
  let m' := fun i => mstep b1 (snd (fst st) i) (- gr i) in
  let v' := fun i => vstep b2 (snd st i) (- gr i) in
  (fun i => thstep lr wd ep c1 c2 (th i) (m' i) (v' i), m', v').

Fixpoint adamw_max_run (k : nat) : vec I * vec I * vec I :=
  match k with
  | O => (theta0, vzero, vzero)
  | S k' => adam_step_max (G k') (eta (S k')) (lam (S k')) (beta1 (S k')) (beta2 (S k'))
                          (eps (S k')) (bc1 beta1 (S k')) (bc2 beta2 (S k')) (adamw_max_run k')
  end.

Fixpoint adam_max_run (k : nat) : vec I * vec I * vec I :=
  match k with
  | O => (theta0, vzero, vzero)
  | S k' => adam_step_max (G k') (lrt eta lam beta1 beta2 (S k')) 0
                          (beta1t eta lam beta1 (S k')) (beta2t eta lam beta2 (S k'))
                          (epst eta lam beta2 eps (S k')) (bct1 eta lam beta1 (S k'))
                          (bct2 eta lam beta2 (S k')) (adam_max_run k')
  end.

(* The maximize runs are the runs of AdamWRun for the map -G. *)
Lemma max_run_neg (k : nat) :
  adamw_max_run k = adamw_run I neg_grad eta lam beta1 beta2 eps theta0 k /\
  adam_max_run k = adam_run I neg_grad eta lam beta1 beta2 eps theta0 k.
Proof.
  induction k as [| k [IHw IHa]]; [split; reflexivity |].
  cbn [adamw_max_run adam_max_run adamw_run adam_run]. rewrite IHw, IHa.
  split; reflexivity.
Qed.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis a_pos : forall k, 0 < a eta lam k.
Hypothesis beta1_range : forall k, 0 <= beta1 k < 1.
Hypothesis beta2_range : forall k, 0 <= beta2 k < 1.

(* adamw_equivalence for maximize = True, same map: theta~_k = theta_k / A_k,
   m~_k = m_k / nu_k, v~_k = v_k / s_k. *)
Theorem adamw_maximize_equivalence (k : nat) :
  fst (fst (adam_max_run k)) = vscale (/ A eta lam k) (fst (fst (adamw_max_run k))) /\
  snd (fst (adam_max_run k)) = vscale (/ nu eta lam beta1 k) (snd (fst (adamw_max_run k))) /\
  snd (adam_max_run k) = vscale (/ sg eta lam beta2 k) (snd (adamw_max_run k)).
Proof.
  destruct (max_run_neg k) as [-> ->].
  apply adamw_equivalence; auto using neg_grad_homogeneous.
Qed.

End AdamWMaximize.

(* ------------------------------------------------------------------ *)
(* amsgrad = True: the state gains the maximum buffer vmax (zero at start),
       vmax_k = max(r_k vmax_{k-1}, v_k),
       theta_k = theta - eta / bc1_k * m_k / (sqrt(vmax_k) / sqrt(bc2_k) + eps),
   with r_k = 1 in torch.optim.AdamW / Adam (torch.maximum(max_exp_avg_sq,
   exp_avg_sq)); the converted run is stock Adam(amsgrad=True) after the one
   buffer rewrite of the library: before step k its stored maximum is
   multiplied by r~_k = s_{k-1} / s_k.  Claim [adamw_amsgrad_equivalence]:
   with the same map (eta~, eps~, beta~) and that rewrite,
       theta~_k = theta_k / A_k,  m~_k = m_k / nu_k,  v~_k = v_k / s_k,
       vmax~_k = vmax_k / s_k    for every k,
   under the hypotheses of adamw_equivalence.  The key fact is that max
   commutes with a positive scaling ([Rmax_scale]):
   max(s_{k-1}/s_k * vmax_{k-1}/s_{k-1}, v_k/s_k) = max(vmax_{k-1}, v_k)/s_k;
   [adam_ams_coord] is the one-step invariant on one coordinate. *)

Lemma Rmax_scale (c x y : R) : 0 < c -> Rmax (c * x) (c * y) = c * Rmax x y.
Proof. intro Hc. apply RmaxRmult. lra. Qed.

(* The parameter update of the converted run, for any m_k and any second
   moment w_k (v_k, or vmax_k with amsgrad) scaled by 1/nu_k and 1/s_k. *)
Lemma adam_update_scaled (A0 a nu1 s1 lr wd eps lrt epst bc1 bc2 bct1 bct2 th m' w : R) :
  0 < A0 -> 0 < a -> a = 1 - lr * wd -> 0 < nu1 -> 0 < s1 ->
  0 < bc1 -> 0 < bc2 -> 0 < bct1 -> 0 < bct2 ->
  epst = eps * sqrt bc2 / sqrt (s1 * bct2) ->
  lrt = lr * (nu1 / (a * A0)) * sqrt bc2 * bct1 / (bc1 * sqrt (s1 * bct2)) ->
  thstep lrt 0 epst bct1 bct2 (/ A0 * th) (/ nu1 * m') (/ s1 * w)
  = / (a * A0) * thstep lr wd eps bc1 bc2 th m' w.
Proof.
  intros HA Ha Hawd Hnu1 Hs1 Hbc1 Hbc2 Hbct1 Hbct2 Heps Hlr. unfold thstep.
  pose proof (sqrt_lt_R0 _ Hs1) as HS.
  pose proof (sqrt_lt_R0 _ Hbc2) as HP.
  pose proof (sqrt_lt_R0 _ Hbct2) as HQ.
  assert (Hden : sqrt (/ s1 * w) / sqrt bct2 + epst
                 = sqrt bc2 / (sqrt s1 * sqrt bct2) * (sqrt w / sqrt bc2 + eps)).
  { rewrite sqrt_mult_alt by (left; apply Rinv_0_lt_compat; exact Hs1).
    rewrite sqrt_inv, Heps.
    rewrite sqrt_mult_alt by lra. field. repeat split; lra. }
  rewrite Hden, Hlr, <- Hawd.
  rewrite sqrt_mult_alt by lra.
  unfold Rdiv. rewrite !Rinv_mult.
  set (u := / (sqrt w * / sqrt bc2 + eps)).
  field. repeat split; lra.
Qed.

(* The one-step invariant of the amsgrad run on one coordinate: the moments
   as in [adam_coord], the rewritten maximum, the parameter. *)
Lemma adam_ams_coord (A0 a nu0 nu1 s0 s1 b1 b2 bt1 bt2 lr wd eps lrt epst
                      bc1 bc2 bct1 bct2 th m v mx g : R) :
  0 < A0 -> 0 < a -> a = 1 - lr * wd ->
  0 < nu0 -> 0 < nu1 -> 0 < s0 -> 0 < s1 ->
  nu1 = b1 * nu0 + (1 - b1) / A0 -> s1 = b2 * s0 + (1 - b2) / A0 ^ 2 ->
  0 < bc1 -> 0 < bc2 -> 0 < bct1 -> 0 < bct2 ->
  bt1 = b1 * nu0 / nu1 -> bt2 = b2 * s0 / s1 ->
  epst = eps * sqrt bc2 / sqrt (s1 * bct2) ->
  lrt = lr * (nu1 / (a * A0)) * sqrt bc2 * bct1 / (bc1 * sqrt (s1 * bct2)) ->
  mstep bt1 (/ nu0 * m) (A0 * g) = / nu1 * mstep b1 m g /\
  vstep bt2 (/ s0 * v) (A0 * g) = / s1 * vstep b2 v g /\
  Rmax (s0 / s1 * (/ s0 * mx)) (vstep bt2 (/ s0 * v) (A0 * g))
  = / s1 * Rmax (1 * mx) (vstep b2 v g) /\
  thstep lrt 0 epst bct1 bct2 (/ A0 * th) (mstep bt1 (/ nu0 * m) (A0 * g))
         (Rmax (s0 / s1 * (/ s0 * mx)) (vstep bt2 (/ s0 * v) (A0 * g)))
  = / (a * A0) * thstep lr wd eps bc1 bc2 th (mstep b1 m g)
                        (Rmax (1 * mx) (vstep b2 v g)).
Proof.
  intros HA Ha Hawd Hnu0 Hnu1 Hs0 Hs1 Hnu Hs Hbc1 Hbc2 Hbct1 Hbct2 Hbt1 Hbt2 Heps Hlr.
  destruct (adam_coord A0 a nu0 nu1 s0 s1 b1 b2 bt1 bt2 lr wd eps lrt epst bc1 bc2 bct1 bct2
              th m v g) as [Hm [Hv _]]; auto.
  assert (Hx : Rmax (s0 / s1 * (/ s0 * mx)) (vstep bt2 (/ s0 * v) (A0 * g))
               = / s1 * Rmax (1 * mx) (vstep b2 v g)).
  { rewrite Hv, <- Rmax_scale by (apply Rinv_0_lt_compat; exact Hs1).
    f_equal. field. lra. }
  split; [exact Hm | split; [exact Hv | split; [exact Hx |]]].
  rewrite Hm, Hx. apply adam_update_scaled; auto.
Qed.

Section AdamWAmsgrad.

Variable I : Type.
Variable G : nat -> vec I -> vec I.
Variables eta lam beta1 beta2 eps : nat -> R.
Variable theta0 : vec I.

(* One amsgrad step on the state (theta, m, v, vmax); r multiplies the stored
   maximum first (r = 1: PyTorch's step; r = s_{k-1} / s_k: the rewrite). *)
Definition ams_step (g : vec I -> vec I) (lr wd b1 b2 ep c1 c2 r : R)
    (st : vec I * vec I * vec I * vec I) : vec I * vec I * vec I * vec I :=
  let th := fst (fst (fst st)) in
  let gr := g th in
  let m' := fun i => mstep b1 (snd (fst (fst st)) i) (gr i) in
  let v' := fun i => vstep b2 (snd (fst st) i) (gr i) in
  let mx' := fun i => Rmax (r * snd st i) (v' i) in
  (fun i => thstep lr wd ep c1 c2 (th i) (m' i) (mx' i), m', v', mx').

(* torch.optim.AdamW(amsgrad=True). *)
Fixpoint adamw_ams_run (k : nat) : vec I * vec I * vec I * vec I :=
  match k with
  | O => (theta0, vzero, vzero, vzero)
  | S k' => ams_step (G k') (eta (S k')) (lam (S k')) (beta1 (S k')) (beta2 (S k'))
                     (eps (S k')) (bc1 beta1 (S k')) (bc2 beta2 (S k')) 1 (adamw_ams_run k')
  end.

(* torch.optim.Adam(amsgrad=True) without weight decay, the same map, and the
   maximum buffer multiplied by s_{k-1} / s_k before step k. *)
Fixpoint adam_ams_run (k : nat) : vec I * vec I * vec I * vec I :=
  match k with
  | O => (theta0, vzero, vzero, vzero)
  | S k' => ams_step (G k') (lrt eta lam beta1 beta2 (S k')) 0
                     (beta1t eta lam beta1 (S k')) (beta2t eta lam beta2 (S k'))
                     (epst eta lam beta2 eps (S k')) (bct1 eta lam beta1 (S k'))
                     (bct2 eta lam beta2 (S k'))
                     (sg eta lam beta2 k' / sg eta lam beta2 (S k')) (adam_ams_run k')
  end.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis a_pos : forall k, 0 < a eta lam k.
Hypothesis beta1_range : forall k, 0 <= beta1 k < 1.
Hypothesis beta2_range : forall k, 0 <= beta2 k < 1.

(* theta~_k = theta_k / A_k, m~_k = m_k / nu_k, v~_k = v_k / s_k,
   vmax~_k = vmax_k / s_k. *)
Theorem adamw_amsgrad_equivalence (k : nat) :
  fst (fst (fst (adam_ams_run k))) = vscale (/ A eta lam k) (fst (fst (fst (adamw_ams_run k)))) /\
  snd (fst (fst (adam_ams_run k)))
    = vscale (/ nu eta lam beta1 k) (snd (fst (fst (adamw_ams_run k)))) /\
  snd (fst (adam_ams_run k)) = vscale (/ sg eta lam beta2 k) (snd (fst (adamw_ams_run k))) /\
  snd (adam_ams_run k) = vscale (/ sg eta lam beta2 k) (snd (adamw_ams_run k)).
Proof.
  induction k as [| k IH].
  - simpl. rewrite Rinv_1, !vscale_1. repeat split.
  - destruct IH as [Hth [Hm [Hv Hx]]].
    cbn [adam_ams_run adamw_ams_run].
    destruct (adamw_ams_run k) as [[[th m] v] mx].
    destruct (adam_ams_run k) as [[[tht mt] vt] mxt].
    cbn [fst snd] in Hth, Hm, Hv, Hx. subst tht mt vt mxt.
    unfold ams_step. cbn [fst snd].
    rewrite (homogeneous_at_inv G k (A eta lam k) th G_homogeneous
               (A_pos eta lam a_pos k)).
    destruct (bias_pos eta lam beta1 beta2 a_pos beta1_range beta2_range k) as [H1 [H2 [H3 H4]]].
    assert (Hc : forall i,
      mstep (beta1t eta lam beta1 (S k)) (/ nu eta lam beta1 k * m i) (A eta lam k * G k th i)
        = / nu eta lam beta1 (S k) * mstep (beta1 (S k)) (m i) (G k th i) /\
      vstep (beta2t eta lam beta2 (S k)) (/ sg eta lam beta2 k * v i) (A eta lam k * G k th i)
        = / sg eta lam beta2 (S k) * vstep (beta2 (S k)) (v i) (G k th i) /\
      Rmax (sg eta lam beta2 k / sg eta lam beta2 (S k) * (/ sg eta lam beta2 k * mx i))
           (vstep (beta2t eta lam beta2 (S k)) (/ sg eta lam beta2 k * v i)
                  (A eta lam k * G k th i))
        = / sg eta lam beta2 (S k) * Rmax (1 * mx i) (vstep (beta2 (S k)) (v i) (G k th i)) /\
      thstep (lrt eta lam beta1 beta2 (S k)) 0 (epst eta lam beta2 eps (S k))
             (bct1 eta lam beta1 (S k)) (bct2 eta lam beta2 (S k)) (/ A eta lam k * th i)
             (mstep (beta1t eta lam beta1 (S k)) (/ nu eta lam beta1 k * m i)
                    (A eta lam k * G k th i))
             (Rmax (sg eta lam beta2 k / sg eta lam beta2 (S k) * (/ sg eta lam beta2 k * mx i))
                   (vstep (beta2t eta lam beta2 (S k)) (/ sg eta lam beta2 k * v i)
                          (A eta lam k * G k th i)))
      = / (a eta lam (S k) * A eta lam k)
        * thstep (eta (S k)) (lam (S k)) (eps (S k)) (bc1 beta1 (S k)) (bc2 beta2 (S k))
                 (th i) (mstep (beta1 (S k)) (m i) (G k th i))
                 (Rmax (1 * mx i) (vstep (beta2 (S k)) (v i) (G k th i)))).
    { intro i.
      apply adam_ams_coord;
        auto using (A_pos eta lam a_pos), (nu_pos eta lam beta1 a_pos beta1_range),
                   (sg_pos eta lam beta2 a_pos beta2_range); reflexivity. }
    unfold vscale. cbn [A].
    repeat split; apply functional_extensionality; intro i; apply Hc.
Qed.

End AdamWAmsgrad.
