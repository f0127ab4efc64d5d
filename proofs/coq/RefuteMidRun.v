(* RefuteMidRun.v -- the negative control's wrong claim is false, not
   merely unproven ([wrong_mid_run_buffer_refuted]): the mid-run
   theorem of MidRun.v (Li & Arora, ICLR 2020, main theorem with momentum,
   started from any buffer v_0) fails when the exponential run's buffer is
   reset to zero instead of copied from the weight-decay run, on a concrete
   instance inside the theorem's hypothesis class; the copied buffer works on
   the same instance.

   Instance: Witness.v's scale-invariant loss L(x) = x1^2 / (x1^2 + x2^2)
   (gradient map wG, homogeneous of degree -1, g(1, 1) = (1/2, -1/2)),
   eta_t = 1/2, lambda_t = 1, gamma_t = 1/2, theta_0 = (1, 1) and the
   nonzero buffer v_0 = (1, 1).  Then c_1 = 1/2 > 0, the weight-decay run
   reaches theta_1 = (0, 1/2), so theta_1 / c_1 = (0, 1) (what the copied
   buffer gives with eta~_0 = 1), while the run from the zero buffer reaches
   (1/2, 3/2).

   Main theorem: [wrong_mid_run_buffer_refuted]; [right_mid_run_instance]:
   MidRun.v's theorem on the same instance.
   Corresponding SymPy module: proofs/mid_run.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum GeneralSchedule MidRun Witness.
Open Scope R_scope.

Definition mr_eta (t : nat) : R := / 2.
Definition mr_lam (t : nat) : R := 1.
Definition mr_gam (t : nat) : R := / 2.
Definition mr_v0 : vec bool := wone.

Lemma mr_c_1 : cs mr_eta mr_lam mr_gam 1 = / 2.
Proof. simpl. unfold mr_eta, mr_lam. field. Qed.

Lemma mr_c_pos (s : nat) : (s <= 1)%nat -> 0 < cs mr_eta mr_lam mr_gam s.
Proof.
  intro Hs. destruct s as [| [| s]].
  - simpl. lra.
  - rewrite mr_c_1. lra.
  - exfalso. lia.
Qed.

(* Main theorem: with the buffer reset to zero, the mid-run invariant fails
   at t = 1. *)
Theorem wrong_mid_run_buffer_refuted :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < cs mr_eta mr_lam mr_gam s) ->
       fst (srun wG (exp_slr mr_eta mr_lam mr_gam) (fun _ => 0) mr_gam (wone, vzero) t)
       = vscale (/ cs mr_eta mr_lam mr_gam t)
           (fst (wd_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t)) /\
       snd (srun wG (exp_slr mr_eta mr_lam mr_gam) (fun _ => 0) mr_gam (wone, vzero) t)
       = vadd (vscale (cs mr_eta mr_lam mr_gam t)
                 (snd (wd_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t)))
              (vscale (ks mr_eta mr_lam mr_gam t)
                 (fst (wd_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t)))).
Proof.
  intro Hclaim.
  pose proof (f_equal (fun x => x true) (proj1 (Hclaim 1%nat mr_c_pos))) as H1.
  rewrite mr_c_1 in H1.
  unfold wd_srun_from, exp_slr in H1. cbn [srun sgd_step fst snd] in H1.
  rewrite mr_c_1 in H1. change (cs mr_eta mr_lam mr_gam 0) with 1 in H1.
  unfold wG in H1. rewrite wgrad_one in H1.
  unfold vscale, vzero, mr_v0, wone, mr_eta, mr_lam, mr_gam in H1.
  field_simplify in H1. lra.
Qed.

(* The same instance satisfies MidRun.v's theorem (buffer copied). *)
Lemma right_mid_run_instance (t : nat) :
  (forall s, (s <= t)%nat -> 0 < cs mr_eta mr_lam mr_gam s) ->
  fst (exp_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t)
  = vscale (/ cs mr_eta mr_lam mr_gam t) (fst (wd_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t)) /\
  (t <> O ->
   snd (exp_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t)
   = vadd (vscale (cs mr_eta mr_lam mr_gam t) (snd (wd_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t)))
          (vscale ((cs mr_eta mr_lam mr_gam t - cs mr_eta mr_lam mr_gam (pred t)) / mr_eta (pred t))
             (fst (wd_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t)))) /\
  (t = O -> snd (exp_srun_from wG mr_eta mr_lam mr_gam wone mr_v0 t) = mr_v0).
Proof.
  apply (mid_run_equivalence bool wG mr_eta mr_lam mr_gam wone mr_v0 witness_homogeneous).
  intro u. unfold mr_eta. lra.
Qed.
