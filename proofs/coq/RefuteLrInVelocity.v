(* RefuteLrInVelocity.v -- the LR-in-velocity equivalence (LrInVelocity.v;
   the Keras/TensorFlow momentum convention, a project result extending
   Li & Arora, ICLR 2020, main theorem) fails with the momentum left at gamma
   instead of gamma~_t = gamma c_{t-1} / c_{t+1}: the negative control's
   wrong claim (LrInVelocity.v's one-step invariant with the momentum kept at
   gamma), stated for the whole run (no-WD run
   with eta~_t = eta_t / (c_t c_{t+1}) and momentum gamma, claim
   theta~_t = theta_t / c_t while c_0, ..., c_t > 0).  The wrong claim is
   refuted on a concrete member of the theorem's hypothesis class, and the
   right statement holds on the same instance.

   Instance: Witness.v's gradient [wG] of the scale-invariant loss
   x1^2 / (x1^2 + x2^2), theta_0 = (1, 1), eta = 1/4, lambda = 1,
   gamma = 1/2.  Then c_1 = 3/4, c_2 = 7/16, eta~_0 = 1/3, both runs reach
   the same state at t = 1 (the buffer starts at 0), with first buffer
   coordinate -1/6, and at t = 2 the first coordinate of the run with
   momentum gamma minus that of the run with gamma~_1 = 8/7 (which is
   theta_2 / c_2) is (1/2 - 8/7) (-1/6) = 3/28.

   Main theorem: [keras_momentum_kept_refuted]; the right statement on the
   same instance: [keras_momentum_instance].
   Corresponding SymPy module: proofs/lr_in_velocity.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Witness LrInVelocity.
Open Scope R_scope.

Definition kv_eta (t : nat) : R := / 4.
Definition kv_lam (t : nat) : R := 1.
Definition kv_gamma : R := / 2.

Lemma kv_c_pos (s : nat) : (s <= 2)%nat -> 0 < c kv_eta kv_lam kv_gamma s.
Proof.
  intro Hs. destruct s as [| [| [| s]]]; [| | | lia];
    unfold c; simpl; unfold kv_eta, kv_lam, kv_gamma; lra.
Qed.

(* Main theorem: with the momentum kept at gamma the claim fails at t = 2. *)
Theorem keras_momentum_kept_refuted :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < c kv_eta kv_lam kv_gamma s) ->
       fst (keras_run wG (exp_lr kv_eta kv_lam kv_gamma) (fun _ => 0) (fun _ => kv_gamma)
              (wone, vzero) t)
       = vscale (/ c kv_eta kv_lam kv_gamma t)
           (fst (wd_run bool wG kv_eta kv_lam kv_gamma wone t))).
Proof.
  intro Hclaim.
  pose proof (lr_in_velocity_equivalence bool wG kv_eta kv_lam kv_gamma wone
                witness_homogeneous 2%nat kv_c_pos) as Hright.
  pose proof (f_equal (fun x => x true) (eq_trans (Hclaim 2%nat kv_c_pos) (eq_sym Hright)))
    as H2.
  cbv beta in H2.
  (* the momentum of step 0 multiplies the zero buffer: same state at t = 1 *)
  assert (E1 : keras_run wG (exp_lr kv_eta kv_lam kv_gamma) (fun _ => 0) (fun _ => kv_gamma)
                 (wone, vzero) 1
               = exp_run bool wG kv_eta kv_lam kv_gamma wone 1).
  { unfold exp_run; cbn [keras_run]. unfold keras_step; cbn [fst snd].
    f_equal; apply functional_extensionality; intro i; unfold vzero; ring. }
  set (s1 := exp_run bool wG kv_eta kv_lam kv_gamma wone 1) in E1.
  assert (Hv : snd s1 true = - / 6).
  { unfold s1, exp_run; cbn [keras_run keras_step fst snd]. unfold wG. rewrite wgrad_one.
    unfold exp_lr, c, vzero; simpl. unfold kv_eta, kv_lam, kv_gamma. field. }
  assert (Hm : exp_mom kv_eta kv_lam kv_gamma 1 = 8 / 7).
  { unfold exp_mom, c; simpl. unfold kv_eta, kv_lam, kv_gamma. field. }
  change (fst (keras_run wG (exp_lr kv_eta kv_lam kv_gamma) (fun _ => 0) (fun _ => kv_gamma)
                (wone, vzero) 2) true)
    with (fst (keras_step (wG 1) (exp_lr kv_eta kv_lam kv_gamma 1) 0 kv_gamma
                 (keras_run wG (exp_lr kv_eta kv_lam kv_gamma) (fun _ => 0)
                    (fun _ => kv_gamma) (wone, vzero) 1)) true) in H2.
  change (fst (exp_run bool wG kv_eta kv_lam kv_gamma wone 2) true)
    with (fst (keras_step (wG 1) (exp_lr kv_eta kv_lam kv_gamma 1) 0
                 (exp_mom kv_eta kv_lam kv_gamma 1) s1) true) in H2.
  rewrite E1 in H2. unfold keras_step in H2; cbn [fst snd] in H2.
  rewrite Hv, Hm in H2. unfold kv_gamma in H2.
  lra.
Qed.

(* The same instance satisfies the theorem with the scheduled momentum. *)
Lemma keras_momentum_instance (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c kv_eta kv_lam kv_gamma s) ->
  fst (exp_run bool wG kv_eta kv_lam kv_gamma wone t)
  = vscale (/ c kv_eta kv_lam kv_gamma t) (fst (wd_run bool wG kv_eta kv_lam kv_gamma wone t)).
Proof.
  apply lr_in_velocity_equivalence. exact witness_homogeneous.
Qed.
