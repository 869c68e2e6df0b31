"""Entry point for nnU-Net's trainer lookup (`nnUNet_extTrainer` points at this folder).

nnU-Net imports the modules of that folder as top-level modules and looks the trainer up by class name; this
module only re-exports the real classes from the installed package (absolute imports, no copies).
"""

from nnunetv2_unisemi.training.nnUNetTrainerUniSeMi import nnUNetTrainerUniSeMi  # noqa: F401
from nnunetv2_unisemi.training.variants.comparison_schedules import (  # noqa: F401
    nnUNetTrainerBCP_CPU,
    nnUNetTrainerMeanTeacher_CPU,
    nnUNetTrainerUniBCP_CPU,
    nnUNetTrainerUniMeanTeacher_CPU,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerBCP import nnUNetTrainerBCP, nnUNetTrainerUniBCP  # noqa: F401
from nnunetv2_unisemi.training.variants.nnUNetTrainerMeanTeacher import (  # noqa: F401
    nnUNetTrainerMeanTeacher,
    nnUNetTrainerUniMeanTeacher,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_ConstantLambda import (  # noqa: F401
    nnUNetTrainerUniSeMi_ConstantLambda,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_LeakyHead import (  # noqa: F401
    nnUNetTrainerUniSeMi_LeakyHead,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_masks import (  # noqa: F401
    nnUNetTrainerUniSeMi_RandomCubesMask,
    nnUNetTrainerUniSeMi_SliceMask,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_MLPHead import (  # noqa: F401
    nnUNetTrainerUniSeMi_MLPHead,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_NoUnlabeled import (  # noqa: F401
    nnUNetTrainerUniSeMi_NoUnlabeled,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_OrthogonalPrompts import (  # noqa: F401
    nnUNetTrainerUniSeMi_OrthogonalPrompts,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_TaskSum,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_PerTaskBatch import (  # noqa: F401
    nnUNetTrainerUniSeMi_ExclusiveOrthogonalPrompts_PerTaskBatch_TaskSum,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ConfidentUnlabeled,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_NoUnlabeled_NoSynthetic,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_ScaledLambda,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TaskOversampling,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TeacherUnlabeled_LightSynthetic_Wide,
    nnUNetTrainerUniSeMi_OrthogonalPrompts_PerTaskBatch_TaskSum_TwoWay,
    nnUNetTrainerUniSeMi_PerTaskBatch,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_SeparatePrompts import (  # noqa: F401
    nnUNetTrainerUniSeMi_SeparatePrompts,
)
from nnunetv2_unisemi.training.variants.nnUNetTrainerUniSeMi_TaskInfo import nnUNetTrainerUniSeMi_TaskInfo  # noqa: F401
from nnunetv2_unisemi.training.variants.short_schedules import (  # noqa: F401
    nnUNetTrainer_CPU,
    nnUNetTrainerUniSeMi_CPU,
    nnUNetTrainerUniSeMi_Demo,
    nnUNetTrainerUniSeMi_NoUnlabeled_CPU,
    nnUNetTrainerUniSeMi_TaskInfo_CPU,
    nnUNetTrainerUniSeMi_Tiny,
)
