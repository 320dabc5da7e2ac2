{
	"patcher" : {
		"fileversion" : 1,
		"appversion" : {
			"major" : 8,
			"minor" : 6,
			"revision" : 0,
			"architecture" : "x64",
			"modernui" : 1
		},
		"classnamespace" : "box",
		"rect" : [ 100.0, 100.0, 960.0, 900.0 ],
		"bglocked" : 0,
		"openinpresentation" : 0,
		"default_fontsize" : 12.0,
		"default_fontface" : 0,
		"default_fontname" : "Arial",
		"gridonopen" : 1,
		"gridsize" : [ 15.0, 15.0 ],
		"gridsnaponopen" : 1,
		"objectsnaponopen" : 1,
		"statusbarvisible" : 2,
		"toolbarvisible" : 1,
		"boxanimatetime" : 200,
		"enablehscroll" : 1,
		"enablevscroll" : 1,
		"devicewidth" : 0.0,
		"description" : "",
		"digest" : "",
		"tags" : "",
		"style" : "",
		"subpatcher_template" : "",
		"assistshowspatchername" : 0,
		"boxes" : [
			{
				"box" : {
					"id" : "obj-1",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 15.0, 400.0, 20.0 ],
					"text" : "musicldm.maxpat - help",
					"fontsize" : 16.0,
					"fontface" : 1
				}
			},
			{
				"box" : {
					"id" : "obj-2",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 45.0, 900.0, 34.0 ],
					"text" : "musicldm.maxpat is a ready-made Max client of musicldm-daemon: type a prompt, it renders a clip, shows the progress and loops the finished clip through buffer~ and groove~. Open it with the daemon running (musicldm-daemon serve) and turn audio on.",
					"linecount" : 2
				}
			},
			{
				"box" : {
					"id" : "obj-3",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 85.0, 900.0, 34.0 ],
					"text" : "Everything is OSC over UDP: udpsend 127.0.0.1 9000 sends requests, udpreceive 9001 hears the replies (the daemon's default reply target). The messages below work from any patch.",
					"linecount" : 2
				}
			},
			{
				"box" : {
					"id" : "obj-4",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 130.0, 300.0, 20.0 ],
					"text" : "Requests (full list: docs/osc.md)",
					"fontface" : 1
				}
			},
			{
				"box" : {
					"id" : "obj-5",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 582.0, 160.0, 22.0 ],
					"text" : "udpsend 127.0.0.1 9000"
				}
			},
			{
				"box" : {
					"id" : "obj-6",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 155.0, 434.0, 22.0 ],
					"text" : "/musicldm/generate \"dark techno drums\" bars 4 bpm 128 seed 7"
				}
			},
			{
				"box" : {
					"id" : "obj-7",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 155.0, 440.0, 20.0 ],
					"text" : "render a clip; options are key value pairs in any order"
				}
			},
			{
				"box" : {
					"id" : "obj-8",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 181.0, 469.0, 22.0 ],
					"text" : "/musicldm/generate \"warm lofi piano\" bars 2 steps 30 takes 2 id 1"
				}
			},
			{
				"box" : {
					"id" : "obj-9",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 181.0, 440.0, 20.0 ],
					"text" : "your own id is echoed in every reply about the job"
				}
			},
			{
				"box" : {
					"id" : "obj-10",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 207.0, 140.0, 22.0 ],
					"text" : "/musicldm/cancel 1"
				}
			},
			{
				"box" : {
					"id" : "obj-11",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 207.0, 440.0, 20.0 ],
					"text" : "cancel job 1 (no id: every job)"
				}
			},
			{
				"box" : {
					"id" : "obj-12",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 233.0, 154.0, 22.0 ],
					"text" : "/musicldm/set bars 2"
				}
			},
			{
				"box" : {
					"id" : "obj-13",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 233.0, 440.0, 20.0 ],
					"text" : "change a default for later requests; answered by /musicldm/value"
				}
			},
			{
				"box" : {
					"id" : "obj-14",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 259.0, 133.0, 22.0 ],
					"text" : "/musicldm/get bpm"
				}
			},
			{
				"box" : {
					"id" : "obj-15",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 259.0, 440.0, 20.0 ],
					"text" : "answered by /musicldm/value bpm ..."
				}
			},
			{
				"box" : {
					"id" : "obj-16",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 285.0, 126.0, 22.0 ],
					"text" : "/musicldm/status"
				}
			},
			{
				"box" : {
					"id" : "obj-17",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 285.0, 440.0, 20.0 ],
					"text" : "answered by /musicldm/status.reply key value ..."
				}
			},
			{
				"box" : {
					"id" : "obj-18",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 311.0, 154.0, 22.0 ],
					"text" : "/musicldm/ping hello"
				}
			},
			{
				"box" : {
					"id" : "obj-19",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 311.0, 440.0, 20.0 ],
					"text" : "answered by /musicldm/pong hello"
				}
			},
			{
				"box" : {
					"id" : "obj-20",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 337.0, 315.0, 22.0 ],
					"text" : "/musicldm/slot 0 \"dark techno drums\" bars 2"
				}
			},
			{
				"box" : {
					"id" : "obj-21",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 337.0, 440.0, 20.0 ],
					"text" : "define slot 0; the daemon keeps a take ready"
				}
			},
			{
				"box" : {
					"id" : "obj-22",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 363.0, 147.0, 22.0 ],
					"text" : "/musicldm/trigger 0"
				}
			},
			{
				"box" : {
					"id" : "obj-23",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 363.0, 440.0, 20.0 ],
					"text" : "play slot 0 at the next bar (through the daemon's audio output)"
				}
			},
			{
				"box" : {
					"id" : "obj-24",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 389.0, 112.0, 22.0 ],
					"text" : "/musicldm/stop"
				}
			},
			{
				"box" : {
					"id" : "obj-25",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 389.0, 440.0, 20.0 ],
					"text" : "stop every slot at the next bar"
				}
			},
			{
				"box" : {
					"id" : "obj-26",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 415.0, 147.0, 22.0 ],
					"text" : "/musicldm/tempo 128"
				}
			},
			{
				"box" : {
					"id" : "obj-27",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 415.0, 440.0, 20.0 ],
					"text" : "set the daemon's clock"
				}
			},
			{
				"box" : {
					"id" : "obj-28",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 622.0, 300.0, 20.0 ],
					"text" : "Replies in a second patch",
					"fontface" : 1
				}
			},
			{
				"box" : {
					"id" : "obj-29",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 644.0, 900.0, 34.0 ],
					"text" : "Only one patch can listen on port 9001. Another patch registers a port of its own with /musicldm/notify 1 PORT and then hears every reply and event there, for an hour after the daemon last heard from this computer (any message renews it); notify 0 PORT ends it.",
					"linecount" : 2
				}
			},
			{
				"box" : {
					"id" : "obj-30",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 682.0, 175.0, 22.0 ],
					"text" : "/musicldm/notify 1 9002"
				}
			},
			{
				"box" : {
					"id" : "obj-31",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 200.0, 682.0, 175.0, 22.0 ],
					"text" : "/musicldm/notify 0 9002"
				}
			},
			{
				"box" : {
					"id" : "obj-32",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 714.0, 160.0, 22.0 ],
					"text" : "udpsend 127.0.0.1 9000"
				}
			},
			{
				"box" : {
					"id" : "obj-33",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 400.0, 682.0, 110.0, 22.0 ],
					"text" : "udpreceive 9002"
				}
			},
			{
				"box" : {
					"id" : "obj-34",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 400.0, 714.0, 147.0, 22.0 ],
					"text" : "print musicldm-help"
				}
			},
			{
				"box" : {
					"id" : "obj-35",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 752.0, 900.0, 48.0 ],
					"text" : "Replies: /musicldm/queued id position, /musicldm/started id, /musicldm/progress id step total, /musicldm/done id path seconds bpm bars seed, /musicldm/fail id code message. udpreceive turns the OSC address into the message selector, so route /musicldm/done splits them; zl nth 2 takes the path out of /musicldm/done.",
					"linecount" : 3
				}
			},
			{
				"box" : {
					"id" : "obj-36",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 808.0, 900.0, 48.0 ],
					"text" : "More options (docs/osc.md, docs/clips.md): grid, key and retake for the tempo grid; audio in: from (a clip id or path), strength, repaint, extend, like, like_weight, blend (repeatable, \"prompt:weight\"), morph_to, morph, morph_seed; on /musicldm/slot also evolve. musicldm.maxpat's section 5 has vary, extend, evolve and morph ready to click: vary and extend start from the clip it last loaded.",
					"linecount" : 3
				}
			},
			{
				"box" : {
					"id" : "obj-37",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 441.0, 420.0, 22.0 ],
					"text" : "/musicldm/generate \"dark techno drums\" from 1 strength 0.4"
				}
			},
			{
				"box" : {
					"id" : "obj-38",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 441.0, 440.0, 20.0 ],
					"text" : "vary: a new take of job 1's clip (or a path); strength 0 keeps it, 1 is a new clip"
				}
			},
			{
				"box" : {
					"id" : "obj-39",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 467.0, 392.0, 22.0 ],
					"text" : "/musicldm/generate \"dark techno drums\" from 1 extend 2"
				}
			},
			{
				"box" : {
					"id" : "obj-40",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 467.0, 440.0, 20.0 ],
					"text" : "extend: continue job 1's clip by 2 new bars"
				}
			},
			{
				"box" : {
					"id" : "obj-41",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 493.0, 392.0, 22.0 ],
					"text" : "/musicldm/slot 0 \"dark techno drums\" bars 1 evolve 0.3"
				}
			},
			{
				"box" : {
					"id" : "obj-42",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 493.0, 440.0, 20.0 ],
					"text" : "a slot that drifts: each take a variation of strength 0.3 of the one playing"
				}
			},
			{
				"box" : {
					"id" : "obj-43",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 519.0, 182.0, 22.0 ],
					"text" : "/musicldm/set evolve 0.3"
				}
			},
			{
				"box" : {
					"id" : "obj-44",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 519.0, 440.0, 20.0 ],
					"text" : "the evolve of every slot that sets none of its own (0: off)"
				}
			},
			{
				"box" : {
					"id" : "obj-45",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 545.0, 252.0, 22.0 ],
					"text" : "/musicldm/morph 0 1 4 quantize bar"
				}
			},
			{
				"box" : {
					"id" : "obj-46",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 500.0, 545.0, 440.0, 20.0 ],
					"text" : "from the next bar, slot 0 becomes slot 1 over 4 bars (both defined)"
				}
			}
		],
		"lines" : [
			{
				"patchline" : {
					"source" : [ "obj-6", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-8", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-10", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-12", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-14", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-16", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-18", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-20", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-22", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-24", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-26", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-30", 0 ],
					"destination" : [ "obj-32", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-31", 0 ],
					"destination" : [ "obj-32", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-33", 0 ],
					"destination" : [ "obj-34", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-37", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-39", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-41", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-43", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-45", 0 ],
					"destination" : [ "obj-5", 0 ]
				}
			}
		],
		"dependency_cache" : [  ],
		"autosave" : 0
	}
}
