"""The simulated cohort: a structural causal model of presenting complaints and their findings.

No public dataset labels "gluteus medius weakness drives this pain", so the demonstration model
learns from this simulator. Every number sits beside its parameter with its source in
:mod:`.priors`; the published case-control rows it reproduces are checked one by one in
``tests/test_simulator_literature.py``.

Structure (per person, vectorised, seeded by ``np.random.default_rng(seed)``)::

    complaint -> sex, age (12-90; adolescents mostly PFP), activity, side
    (complaint, sex, age) -> BMI and its class O
    (complaint, age, O, activity) -> W, a hip abductor deficit is present;
        its severity is continuous: log ratio ~ N(log 0.72, 0.12) of the person's own level
    complaint -> A alternative cause (none / intra-articular knee or radiculopathy / hip joint)
    complaint -> Q quadriceps weakness (the competing driver of PFP)
    (complaint, sex, age, W) -> T gluteal tendinopathy (a co-existing source of lateral hip pain)
    (W, severity, A, Q, complaint) -> H hip_driver_true (impossible without W)
    (H, symptom duration) -> hip_driver, the observed label (see below)
    findings, conditionally independent given the latents and the recorded covariates:
      severity -> torque of both hips (norm of cds.norms x BMI class x person x errors, the
        deficit on the painful side, a share of it on the other), hip ER and extension torque,
        Trendelenburg sign, step-down quality, squat and running kinematics (weakly);
      all patients -> pain inhibition of the painful side's torque;
      Q -> knee extension torque;  T -> lateral hip pain, trochanter tenderness, 30-s stance
      pain, pain on resisted abduction;  A -> effusion, locking, straight-leg raise, leg pain
      with numbness, FADIR;  H -> symptom pattern (activity-specific where it should be);
      complaint only -> Ober and Noble tests (they confirm ITBS, not the driver), duration.

The label has no incorporation bias. The observed ``hip_driver`` is a clinically meaningful
response (>= 2 points on the 0-10 pain scale, or "much better") to a hip-focused programme at
6-8 weeks. It comes from the latent driver H and the course: a driver responds to the programme
(P 0.85 at 4 months' duration), a non-driver "responds" only through natural recovery or
non-specific effects (P 0.10), and both fall with longer symptom duration (poorer prognosis:
Collins 2010, 2013; Lankhorst 2016; Matthews 2017). The dynamometry the model reads enters the
label only through the latent deficit, never as "weakness found on assessment". Symptom
duration is not evidence for a driver: it lowers the chance of response whatever the driver.

:func:`true_probability` is the exact posterior of the observed label given the recorded
columns (:mod:`.posterior`).
"""

from .generate import CARE_SETTINGS as CARE_SETTINGS
from .generate import simulate as simulate
from .posterior import true_probability as true_probability

__all__ = ["CARE_SETTINGS", "simulate", "true_probability"]
