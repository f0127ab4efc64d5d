(* RefuteTexp.v -- TEXP (Texp.v; Li & Arora, ICLR 2020, the TEXP schedule)
   fails without the boundary buffer shift: the negative control's wrong
   claim, Texp.v's invariant with delta_t = 0 at every step (i.e. the plain
   no-WD momentum run with LR eta~_t = eta_t / (c_t c_{t+1}) from
   (theta_0, -q_0 theta_0)), is false, not merely unproven
   ([texp_no_shift_refuted]).  Refuted here is
   already its first half, theta~_t = theta_t / c_t for every t, on a
   concrete member of the theorem's hypothesis class; the right statement
   (with the shift) holds on the same instance.

   Instance: Witness.v's gradient [wG] of the scale-invariant loss
   x1^2 / (x1^2 + x2^2), theta_0 = (1, 1), gamma = 1/4, alpha_t = 1/2 at
   every step, and a step decay after step 0: (eta_0, lambda_0) = (1, 1/4),
   (eta_t, lambda_t) = (1/2, 1/2) for t >= 1 (eta_t lambda_t = 1/4 and
   alpha = 1/2 is the double root of x^2 - x + 1/4 throughout).  Then
   q_0 = 1, q_1 = 2, delta_1 = -1, c_1 = 1/2, c_2 = 1/4, eta~_1 = 4, both
   runs reach theta~_1 = (1/2, 5/2), and at t = 2 the first coordinate
   without the shift minus the shifted one (which is theta_2 / c_2) is
   eta~_1 gamma delta_1 c_1^2 theta~_1 = -1/8.

   Main theorem: [texp_no_shift_refuted]; the right statement on the same
   instance: [texp_shift_instance].
   Corresponding SymPy module: proofs/texp.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec Witness Momentum Texp.
Open Scope R_scope.

Definition tx_eta (t : nat) : R := match t with O => 1 | S _ => / 2 end.
Definition tx_lam (t : nat) : R := match t with O => / 4 | S _ => / 2 end.
Definition tx_alpha (t : nat) : R := / 2.
Definition tx_gamma : R := / 4.

Lemma tx_eta_pos (t : nat) : 0 < tx_eta t.
Proof. destruct t; simpl; lra. Qed.

Lemma tx_alpha_pos (t : nat) : 0 < tx_alpha t.
Proof. unfold tx_alpha. lra. Qed.

Lemma tx_alpha_root (t : nat) :
  tx_alpha t ^ 2 - (1 + tx_gamma - tx_eta t * tx_lam t) * tx_alpha t + tx_gamma = 0.
Proof. unfold tx_alpha, tx_gamma. destruct t; simpl; field. Qed.

(* The TEXP run with no shift at any step. *)
Definition noshift_run (t : nat) : vec bool * vec bool :=
  run wG (exp_lr tx_eta tx_alpha) (fun _ => 0) tx_gamma
      (wone, vscale (- q tx_eta tx_alpha 0) wone) t.

(* One step from a shifted buffer: the shift moves theta by -lr mom d theta. *)
Lemma step_after_shift (g : vec bool -> vec bool) (lr mom d : R) (s : vec bool * vec bool) (i : bool) :
  fst (sgd_step g lr 0 mom (fst s, vadd (snd s) (vscale d (fst s)))) i
  = fst (sgd_step g lr 0 mom s) i - lr * mom * d * fst s i.
Proof. unfold sgd_step, vadd, vscale; simpl. ring. Qed.

(* Main theorem: without the shift, theta~_t = theta_t / c_t fails at t = 2. *)
Theorem texp_no_shift_refuted :
  ~ (forall t : nat,
       fst (noshift_run t)
       = vscale (/ c tx_alpha t) (fst (wd_run bool wG tx_eta tx_lam tx_gamma wone t))).
Proof.
  intro Hclaim.
  destruct (texp_equivalence bool wG tx_eta tx_lam tx_alpha tx_gamma wone witness_homogeneous
              tx_eta_pos tx_alpha_pos tx_alpha_root 2%nat) as [Hright _].
  pose proof (f_equal (fun x => x true) (eq_trans (Hclaim 2%nat) (eq_sym Hright))) as H2.
  cbv beta in H2.
  (* the shift of step 0 is zero: both runs agree at t = 1 *)
  assert (E1 : texp_run bool wG tx_eta tx_alpha tx_gamma wone 1 = noshift_run 1).
  { cbn [texp_run]. unfold noshift_run; cbn [run].
    f_equal. unfold shift; simpl delta; cbn [fst snd].
    f_equal. apply functional_extensionality; intro i. unfold vadd, vscale. ring. }
  change (fst (texp_run bool wG tx_eta tx_alpha tx_gamma wone 2) true)
    with (fst (sgd_step (wG 1) (exp_lr tx_eta tx_alpha 1) 0 tx_gamma
                 (shift bool tx_eta tx_alpha 1 (texp_run bool wG tx_eta tx_alpha tx_gamma wone 1)))
              true) in H2.
  unfold shift in H2. rewrite step_after_shift, E1 in H2.
  change (fst (sgd_step (wG 1) (exp_lr tx_eta tx_alpha 1) 0 tx_gamma (noshift_run 1)) true)
    with (fst (noshift_run 2) true) in H2.
  assert (Hth : fst (noshift_run 1) true = / 2).
  { unfold noshift_run; cbn [run sgd_step fst snd]. unfold wG. rewrite wgrad_one.
    unfold vscale, wone, exp_lr, q, tx_eta, tx_alpha, tx_gamma; simpl. field. }
  assert (HK : exp_lr tx_eta tx_alpha 1 * tx_gamma * (delta tx_eta tx_alpha 1 * c tx_alpha 1 ^ 2)
               = - / 4).
  { unfold exp_lr, delta, q, tx_eta, tx_alpha, tx_gamma; simpl. field. }
  rewrite HK, Hth in H2.
  lra.
Qed.

(* The same instance satisfies the TEXP theorem with the shift. *)
Lemma texp_shift_instance (t : nat) :
  fst (texp_run bool wG tx_eta tx_alpha tx_gamma wone t)
  = vscale (/ c tx_alpha t) (fst (wd_run bool wG tx_eta tx_lam tx_gamma wone t)).
Proof.
  apply (texp_equivalence bool wG tx_eta tx_lam tx_alpha tx_gamma wone witness_homogeneous
           tx_eta_pos tx_alpha_pos tx_alpha_root).
Qed.
