# The images of ImageNet-100 without their labels (paper Sec. 3.1 and
# Table 4): the 100 synsets of CMC (Tian et al.) that DETReg and the paper
# use, shipped as classes='imagenet100'; classes=None takes all of
# ImageNet-1K. A variable for the configs that list this file beside their
# full base (mmengine forbids one key in two bases).
imagenet100_unlabeled = dict(
    type='ImageNetTreeDataset',
    data_root='data/imagenet/',
    data_prefix=dict(img='train'),
    classes='imagenet100')
