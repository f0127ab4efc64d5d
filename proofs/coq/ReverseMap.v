(* ReverseMap.v -- the reverse map (the converse direction of the general
   theorem of Li & Arora, ICLR 2020, in PyTorch's SGD convention): from a
   given exponential-run LR schedule eta~_t > 0 (with lambda_t, gamma) back
   to the weight-decay run's LR eta_t.

   With c_0 = 1,
       k_0 = -lambda_0,
       k_t = gamma (c_t - c_{t-1}) / eta_{t-1} - lambda_t c_t        (t >= 1),
       D_t = 1 - eta~_t c_t k_t,
       eta_t = eta~_t c_t^2 / D_t,       c_{t+1} = c_t + eta_t k_t.
   Claims, when every D_t > 0 (and eta~_t > 0):
     [reverse_map_positive]   eta_t > 0 and c_t > 0 (c_{t+1} = c_t / D_t);
     [reverse_map_c]          these c_t are the scale sequence of
                              GeneralSchedule.v computed from eta_t;
     [reverse_map_forward]    forward(reverse) = identity:
                              eta_t / (c_t c_{t+1}) = eta~_t;
     [reverse_map_equivalence] the no-WD run with the given eta~_t is the
                              weight-decay run with LR eta_t divided by c_t.
   And D_t > 0 is necessary: [reverse_map_necessary] (any eta_t > 0 with
   c_t, c_{t+1} > 0 mapping to eta~_t has D_t = c_t / c_{t+1} > 0).

   Main theorem: [reverse_map_equivalence].
   Corresponding SymPy module: proofs/reverse_map.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum GeneralSchedule.
Open Scope R_scope.

Section ReverseMap.

Variables etat lam : nat -> R.               (* given exp-run LR, WD schedule *)
Variable gamma : R.                          (* momentum *)

(* rev t = (c_t, c_{t+1}, eta_t) *)
Fixpoint rev (t : nat) : R * R * R :=
  match t with
  | O =>
      let cc := 1 in
      let k := - lam 0 in
      let e := etat 0 * cc ^ 2 / (1 - etat 0 * cc * k) in
      (cc, cc + e * k, e)
  | S t' =>
      let p := rev t' in
      let cp := fst (fst p) in
      let cc := snd (fst p) in
      let ep := snd p in
      let k := gamma * (cc - cp) / ep - lam t * cc in
      let e := etat t * cc ^ 2 / (1 - etat t * cc * k) in
      (cc, cc + e * k, e)
  end.

Definition rc (t : nat) : R := fst (fst (rev t)).
Definition reta (t : nat) : R := snd (rev t).

Definition kr (t : nat) : R :=
  match t with
  | O => - lam 0
  | S t' => gamma * (rc t - rc t') / reta t' - lam t * rc t
  end.

Definition D (t : nat) : R := 1 - etat t * rc t * kr t.

Lemma rc_0 : rc 0 = 1.
Proof. reflexivity. Qed.

Lemma rev_unfold (t : nat) :
  rc (S t) = rc t + reta t * kr t /\
  reta t = etat t * rc t ^ 2 / (1 - etat t * rc t * kr t).
Proof. destruct t; split; reflexivity. Qed.

Hypothesis etat_pos : forall t, 0 < etat t.
Hypothesis D_pos : forall t, 0 < D t.

Lemma rc_next (t : nat) : 0 < rc t -> rc (S t) = rc t / D t.
Proof.
  intro Hc. destruct (rev_unfold t) as [H1 H2].
  pose proof (D_pos t) as HD. unfold D in *.
  rewrite H1, H2. field. lra.
Qed.

(* Main theorem: the reverse map yields positive LRs and scales. *)
Theorem reverse_map_positive (t : nat) : 0 < rc t /\ 0 < reta t.
Proof.
  assert (Hc : forall t, 0 < rc t).
  { induction t0 as [| t0 IH]; [rewrite rc_0; lra |].
    rewrite (rc_next t0 IH). apply Rdiv_lt_0_compat; [exact IH | apply D_pos]. }
  split; [apply Hc |].
  destruct (rev_unfold t) as [_ H2]. rewrite H2.
  pose proof (D_pos t) as HD. unfold D in HD.
  apply Rdiv_lt_0_compat; [| exact HD].
  apply Rmult_lt_0_compat; [apply etat_pos | apply pow_lt, Hc].
Qed.

Lemma reta_pos (t : nat) : 0 < reta t.
Proof. apply reverse_map_positive. Qed.

(* Main theorem: the c_t of the reverse map are the forward scale sequence. *)
Theorem reverse_map_c (t : nat) : c reta lam gamma t = rc t.
Proof.
  assert (H : forall t, c reta lam gamma t = rc t /\ c reta lam gamma (S t) = rc (S t)).
  { induction t0 as [| t0 [IH0 IH1]].
    - split; [reflexivity |].
      simpl c. destruct (rev_unfold 0) as [H1 _]. rewrite H1, rc_0. simpl kr. ring.
    - split; [exact IH1 |].
      change (c reta lam gamma (S (S t0))) with
        ((1 + gamma * (reta (S t0) / reta t0) - reta (S t0) * lam (S t0))
           * c reta lam gamma (S t0)
         - gamma * (reta (S t0) / reta t0) * c reta lam gamma t0).
      rewrite IH0, IH1.
      destruct (rev_unfold (S t0)) as [H1 _]. rewrite H1. simpl kr.
      pose proof (reta_pos t0). field. lra. }
  apply H.
Qed.

(* Main theorem: forward(reverse) = identity. *)
Theorem reverse_map_forward (t : nat) : exp_lr reta lam gamma t = etat t.
Proof.
  unfold exp_lr. rewrite !reverse_map_c.
  destruct (reverse_map_positive t) as [Hc _].
  rewrite (rc_next t Hc).
  destruct (rev_unfold t) as [_ H2]. rewrite H2.
  pose proof (D_pos t) as HD. unfold D in *.
  field. split; lra.
Qed.

(* Main theorem: the given no-WD run is a weight-decay run divided by c_t. *)
Theorem reverse_map_equivalence (I : Type) (G : nat -> vec I -> vec I) (theta0 : vec I)
    (G_homogeneous : homogeneous_m1 G) (t : nat) :
  fst (run G etat (fun _ => 0) gamma (theta0, vzero) t)
  = vscale (/ rc t) (fst (wd_run G reta lam gamma theta0 t)).
Proof.
  assert (Hlr : etat = exp_lr reta lam gamma).
  { apply functional_extensionality; intro s. symmetry. apply reverse_map_forward. }
  rewrite Hlr, <- reverse_map_c.
  apply (general_schedule_equivalence_const I G reta lam gamma theta0 G_homogeneous reta_pos t).
  intros s _. rewrite reverse_map_c. apply reverse_map_positive.
Qed.

End ReverseMap.

(* D_t > 0 is necessary: any positive eta_t with positive c_t, c_{t+1} that
   maps to eta~_t gives D_t = c_t / c_{t+1}. *)
Theorem reverse_map_necessary (etat_t eta_t c_t k_t : R) :
  0 < eta_t -> 0 < c_t -> 0 < c_t + eta_t * k_t ->
  etat_t = eta_t / (c_t * (c_t + eta_t * k_t)) ->
  1 - etat_t * c_t * k_t = c_t / (c_t + eta_t * k_t) /\ 0 < 1 - etat_t * c_t * k_t.
Proof.
  intros He Hc Hn ->.
  assert (E : 1 - eta_t / (c_t * (c_t + eta_t * k_t)) * c_t * k_t = c_t / (c_t + eta_t * k_t))
    by (field; split; lra).
  rewrite E. split; [reflexivity | apply Rdiv_lt_0_compat; assumption].
Qed.
