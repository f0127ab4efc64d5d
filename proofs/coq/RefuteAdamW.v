(* RefuteAdamW.v -- the negative control's wrong claim is false, not merely
   unproven ([lr_only_refuted]): a map for
   AdamW -> Adam without weight decay (the project's extension of Li & Arora,
   ICLR 2020) that keeps the first-moment coefficient beta1 (instead of
   beta1~_k = beta1_k nu_{k-1} / nu_k) breaks the first-moment half of the
   one-step invariant of AdamW.v, and the run it gives departs from
   m~_k = m_k / nu_k, while the right map works on the same instances.

   The claim [lr_only_claim]: with
   nu_k = beta1 nu_{k-1} + (1 - beta1) / A_{k-1}, the first-moment update
   with beta1 kept, from (m / nu_{k-1}, A_{k-1} g), gives m' / nu_k, where m'
   is AdamW's first-moment update from (m, g).
   Instance: the values at step 2 of the witness run below: A_1 = 1/2,
   nu_1 = 1, nu_2 = 3/2, beta1 = 1/2, m_1 = 1/4, g_2 = 18/25; the claim's two
   sides are 61/200 and 97/300; with beta1~ = beta1 nu_1 / nu_2 = 1/3 both are
   97/300 ([right_first_moment_instance]).
   Run instance (inside the theorems' hypothesis class): Witness.v's loss
   x1^2 / (x1^2 + x2^2), gradient map wG (degree -1 homogeneous), theta_0 =
   (1, 1), eta_k = 1/4, lambda_k = 2 (a_k = 1/2), beta1 = 1/2, beta2 = 0,
   eps = 0 (all within adamw_equivalence's hypotheses).  AdamW: theta_1 = (1/4, 3/4), m_1 = (1/4, -1/4), g_2 =
   (18/25, -6/25), m_2 = (97/200, -49/200), nu_2 = 3/2.  The Adam run with
   beta1 kept (its own bias correction 1 - beta1^k, every other
   hyper-parameter from AdamW.v's map) has the same
   first step, theta~_1 = theta_1 / A_1, but m~_2 = (61/200, -37/200), not
   m_2 / nu_2 = (97/300, -49/300) [lr_only_run_refuted]; AdamW.v's map gives
   the equivalence on this run [right_map_witness].

   Main theorems: [lr_only_refuted], [lr_only_run_refuted]; the right
   statement on the same instances: [right_first_moment_instance],
   [right_map_witness].
   Corresponding SymPy module: proofs/adamw.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec Witness AdamW.
Open Scope R_scope.

(* The wrong claim: the first moment with beta1 kept. *)
Definition lr_only_claim : Prop :=
  forall A0 nu0 nu1 b1 m g : R,
    0 < A0 -> 0 < nu0 -> 0 < nu1 -> nu1 = b1 * nu0 + (1 - b1) / A0 ->
    mstep b1 (/ nu0 * m) (A0 * g) = / nu1 * mstep b1 m g.

(* Main theorem: the first-moment invariant with beta1 kept is false. *)
Theorem lr_only_refuted : ~ lr_only_claim.
Proof.
  intro H.
  pose proof (H (/ 2) 1 (3 / 2) (/ 2) (/ 4) (18 / 25)) as E.
  unfold mstep in E.
  assert (Hne : / 2 * (/ 1 * / 4) + (1 - / 2) * (/ 2 * (18 / 25))
                <> / (3 / 2) * (/ 2 * / 4 + (1 - / 2) * (18 / 25))).
  { intro Heq. field_simplify in Heq. lra. }
  apply Hne, E; lra.
Qed.

(* The right statement (AdamW.v's beta1~ = b1 nu0 / nu1) on the same instance. *)
Lemma right_first_moment_instance :
  mstep (/ 2 * 1 / (3 / 2)) (/ 1 * / 4) (/ 2 * (18 / 25))
  = / (3 / 2) * mstep (/ 2) (/ 4) (18 / 25).
Proof. unfold mstep. field. Qed.

(* ------------------------------------------------------------------ *)
(* The run instance. *)

Definition w_eta (k : nat) : R := / 4.
Definition w_lam (k : nat) : R := 2.
Definition w_b1 (k : nat) : R := / 2.
Definition w_b2 (k : nat) : R := 0.
Definition w_eps (k : nat) : R := 0.

(* Adam without weight decay with AdamW.v's map except that beta1 is kept
   (its own bias correction 1 - beta1^k). *)
Fixpoint lr_only_run (k : nat) : vec bool * vec bool * vec bool :=
  match k with
  | O => (wone, vzero, vzero)
  | S k' => adam_step bool (wG k') (lrt w_eta w_lam w_b1 w_b2 (S k')) 0 (w_b1 (S k'))
                      (beta2t w_eta w_lam w_b2 (S k')) (epst w_eta w_lam w_b2 w_eps (S k'))
                      (bc1 w_b1 (S k')) (bct2 w_eta w_lam w_b2 (S k')) (lr_only_run k')
  end.

Lemma w_a_pos (k : nat) : 0 < a w_eta w_lam k.
Proof. unfold a, w_eta, w_lam. lra. Qed.
Lemma w_b1_range (k : nat) : 0 <= w_b1 k < 1.
Proof. unfold w_b1. lra. Qed.
Lemma w_b2_range (k : nat) : 0 <= w_b2 k < 1.
Proof. unfold w_b2. lra. Qed.

(* The right map gives adamw_equivalence on the witness run. *)
Lemma right_map_witness (k : nat) :
  fst (fst (adam_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k))
    = vscale (/ A w_eta w_lam k) (fst (fst (adamw_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k))) /\
  snd (fst (adam_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k))
    = vscale (/ nu w_eta w_lam w_b1 k) (snd (fst (adamw_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k))) /\
  snd (adam_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k)
    = vscale (/ sg w_eta w_lam w_b2 k) (snd (adamw_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k)).
Proof.
  apply adamw_equivalence;
    [exact witness_homogeneous | exact w_a_pos | exact w_b1_range | exact w_b2_range].
Qed.

Lemma w_A1 : A w_eta w_lam 1 = / 2.
Proof. cbn. unfold a, w_eta, w_lam. field. Qed.
Lemma w_nu1 : nu w_eta w_lam w_b1 1 = 1.
Proof. cbn. unfold w_b1. field. Qed.
Lemma w_nu2 : nu w_eta w_lam w_b1 2 = 3 / 2.
Proof. cbn. unfold a, w_eta, w_lam, w_b1. field. Qed.
Lemma w_sg1 : sg w_eta w_lam w_b2 1 = 1.
Proof. cbn. unfold w_b2. field. Qed.

(* One Adam step from zero buffers at theta = 1 with beta2 = 0, eps = 0 and
   gradient +-1/2: theta - lr / bc1 * (1 - b1) g / |g|. *)
Lemma first_step (lr wd c1 b1 th g : R) :
  g * g = / 4 -> 
  thstep lr wd 0 c1 (1 - 0 ^ 1) th (mstep b1 0 g) (vstep 0 0 g)
  = (1 - lr * wd) * th - lr / c1 * ((1 - b1) * g * 2).
Proof.
  intro Hg. unfold thstep, mstep, vstep.
  replace (0 * 0 + (1 - 0) * (g * g)) with (/ 2 * / 2) by lra.
  rewrite sqrt_square by lra. replace (1 - 0 ^ 1) with 1 by ring. rewrite sqrt_1.
  replace (/ 2 / 1 + 0) with (/ 2) by field.
  unfold Rdiv. rewrite Rinv_inv. ring.
Qed.

(* The first step: theta_1 = (1/4, 3/4), theta~_1 = theta_1 / A_1 = (1/2, 3/2). *)
Definition th1 : vec bool := fun i => if i then / 4 else 3 / 4.
Definition th1t : vec bool := fun i => if i then / 2 else 3 / 2.

Lemma adamw_step1 : fst (fst (adamw_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone 1)) = th1.
Proof.
  cbn [adamw_run]. unfold adam_step. cbn [fst snd]. unfold wG. rewrite wgrad_one.
  apply functional_extensionality; intros [|];
    unfold th1, wone, vzero, w_eta, w_lam, w_b1, w_b2, w_eps, bc1, bc2, w_b1, w_b2;
    rewrite first_step by field; field.
Qed.

Lemma lr_only_step1 : fst (fst (lr_only_run 1)) = th1t.
Proof.
  cbn [lr_only_run]. unfold adam_step. cbn [fst snd]. unfold wG. rewrite wgrad_one.
  assert (Hb : beta2t w_eta w_lam w_b2 1 = 0) by (unfold beta2t, w_b2; unfold Rdiv; ring).
  assert (Hbc : bct2 w_eta w_lam w_b2 1 = 1 - 0 ^ 1) by (unfold bct2; rewrite Hb; reflexivity).
  assert (He : epst w_eta w_lam w_b2 w_eps 1 = 0) by (unfold epst, w_eps; unfold Rdiv; ring).
  assert (Hl : lrt w_eta w_lam w_b1 w_b2 1 = / 2).
  { unfold lrt, bct1, bc2, bct2, beta1t. rewrite Hb, w_nu1, w_A1, w_sg1.
    cbn [nu A]. unfold w_b1, w_b2, w_eta. replace ((1 - 0 ^ 1)) with 1 by ring.
    rewrite Rmult_1_l, sqrt_1. unfold bc1. field. }
  rewrite Hb, Hbc, He, Hl.
  apply functional_extensionality; intros [|];
    unfold th1t, wone, vzero, w_b1, bc1; rewrite first_step by field; field.
Qed.

Lemma wgrad_th1 : wgrad th1 = fun i => if i then 18 / 25 else - (6 / 25).
Proof. apply functional_extensionality; intros [|]; unfold wgrad, wnorm, th1; field. Qed.
Lemma wgrad_th1t : wgrad th1t = fun i => if i then 9 / 25 else - (3 / 25).
Proof. apply functional_extensionality; intros [|]; unfold wgrad, wnorm, th1t; field. Qed.

(* The second first moments. *)
Lemma adamw_m2 :
  snd (fst (adamw_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone 2))
  = fun i => if i then 97 / 200 else - (49 / 200).
Proof.
  pose proof adamw_step1 as H1.
  cbn [adamw_run] in *. unfold adam_step in *. cbn [fst snd] in *.
  rewrite H1. unfold wG. rewrite wgrad_th1, wgrad_one.
  apply functional_extensionality; intros [|]; unfold mstep, vzero, w_b1; field.
Qed.

Lemma lr_only_m2 :
  snd (fst (lr_only_run 2)) = fun i => if i then 61 / 200 else - (37 / 200).
Proof.
  pose proof lr_only_step1 as H1.
  cbn [lr_only_run] in *. unfold adam_step in *. cbn [fst snd] in *.
  rewrite H1. unfold wG. rewrite wgrad_th1t, wgrad_one.
  apply functional_extensionality; intros [|]; unfold mstep, vzero, w_b1; field.
Qed.

(* Main theorem: the run with beta1 kept does not satisfy adamw_equivalence
   (its first moment at k = 2 already fails). *)
Theorem lr_only_run_refuted :
  ~ (forall k : nat,
       fst (fst (lr_only_run k))
         = vscale (/ A w_eta w_lam k) (fst (fst (adamw_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k))) /\
       snd (fst (lr_only_run k))
         = vscale (/ nu w_eta w_lam w_b1 k) (snd (fst (adamw_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k))) /\
       snd (lr_only_run k)
         = vscale (/ sg w_eta w_lam w_b2 k) (snd (adamw_run bool wG w_eta w_lam w_b1 w_b2 w_eps wone k))).
Proof.
  intro H. destruct (H 2%nat) as [_ [Hm _]].
  rewrite lr_only_m2, adamw_m2, w_nu2 in Hm.
  pose proof (f_equal (fun x => x true) Hm) as E. unfold vscale in E. cbv beta iota in E.
  field_simplify in E. lra.
Qed.
