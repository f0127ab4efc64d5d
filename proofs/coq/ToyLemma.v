(* ToyLemma.v -- the lemma behind the paper's toy counterexample (Li & Arora,
   ICLR 2020): with a scale-invariant loss and weight decay lambda > 0, the
   regularised objective L(theta) + (lambda/2) |theta|^2 has no stationary
   point other than theta = 0, because
       0 = <grad L(theta) + lambda theta, theta> = lambda |theta|^2
   (scale invariance gives <grad L(theta), theta> = 0).

   Stated for coordinates over the finite index {0, ..., n-1}: if
   <g, theta> = 0 and g + lambda theta = 0 with lambda > 0, then theta = 0.

   Main theorem: [toy_stationary_point_zero].
   Corresponding SymPy module: proofs/toy_lemma.py. *)

From Coq Require Import Reals Lra Lia.
Open Scope R_scope.

(* sum n f = f 0 + f 1 + ... + f (n - 1) *)
Fixpoint sum (n : nat) (f : nat -> R) : R :=
  match n with
  | O => 0
  | S n' => sum n' f + f n'
  end.

Definition dot (n : nat) (x y : nat -> R) : R := sum n (fun i => x i * y i).

Lemma sum_ext (n : nat) (f g : nat -> R) :
  (forall i, (i < n)%nat -> f i = g i) -> sum n f = sum n g.
Proof.
  induction n as [| n IH]; intro Hfg; simpl.
  - reflexivity.
  - rewrite IH by (intros i Hi; apply Hfg; lia).
    rewrite (Hfg n) by lia.
    reflexivity.
Qed.

Lemma sum_scale (n : nat) (a : R) (f : nat -> R) :
  sum n (fun i => a * f i) = a * sum n f.
Proof.
  induction n as [| n IH]; simpl.
  - ring.
  - rewrite IH. ring.
Qed.

Lemma sum_nonneg (n : nat) (f : nat -> R) :
  (forall i, (i < n)%nat -> 0 <= f i) -> 0 <= sum n f.
Proof.
  induction n as [| n IH]; intro Hf; simpl.
  - lra.
  - assert (H1 : 0 <= sum n f) by (apply IH; intros i Hi; apply Hf; lia).
    assert (H2 : 0 <= f n) by (apply Hf; lia).
    lra.
Qed.

(* A sum of non-negative terms vanishes only if every term does. *)
Lemma sum_nonneg_zero (n : nat) (f : nat -> R) :
  (forall i, (i < n)%nat -> 0 <= f i) -> sum n f = 0 ->
  forall i, (i < n)%nat -> f i = 0.
Proof.
  induction n as [| n IH]; intros Hf Hsum i Hi; simpl in Hsum.
  - lia.
  - assert (H1 : 0 <= sum n f) by (apply sum_nonneg; intros j Hj; apply Hf; lia).
    assert (H2 : 0 <= f n) by (apply Hf; lia).
    assert (Hlast : f n = 0) by lra.
    assert (Hrest : sum n f = 0) by lra.
    destruct (Nat.eq_dec i n) as [-> | Hne].
    + exact Hlast.
    + apply IH; [intros j Hj; apply Hf; lia | exact Hrest | lia].
Qed.

(* Main theorem: the toy's lemma. *)
Theorem toy_stationary_point_zero (n : nat) (lam : R) (g theta : nat -> R)
    (Hlam : 0 < lam)
    (Horth : dot n g theta = 0)
    (Hstat : forall i, (i < n)%nat -> g i + lam * theta i = 0) :
  forall i, (i < n)%nat -> theta i = 0.
Proof.
  (* <g, theta> = -lambda |theta|^2 at a stationary point *)
  assert (Hnorm : dot n g theta = - lam * sum n (fun i => theta i * theta i)).
  { unfold dot. rewrite <- sum_scale. apply sum_ext.
    intros i Hi. pose proof (Hstat i Hi) as Hgi.
    replace (g i) with (- lam * theta i) by lra. ring. }
  assert (Hsq : sum n (fun i => theta i * theta i) = 0).
  { rewrite Horth in Hnorm.
    apply (Rmult_eq_reg_l (- lam)); [lra | lra]. }
  intros i Hi.
  pose proof (sum_nonneg_zero n (fun j => theta j * theta j)
                (fun j _ => Rle_0_sqr (theta j)) Hsq i Hi) as Hi0.
  simpl in Hi0.
  nra.
Qed.
