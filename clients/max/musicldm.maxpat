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
		"rect" : [ 60.0, 80.0, 1080.0, 1060.0 ],
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
					"patching_rect" : [ 20.0, 15.0, 620.0, 20.0 ],
					"text" : "musicldm - render text-to-music clips with musicldm-daemon over OSC",
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
					"patching_rect" : [ 20.0, 42.0, 1000.0, 34.0 ],
					"text" : "Start the daemon first (musicldm-daemon serve). Requests go to 127.0.0.1 port 9000 (udpsend), replies come back on port 9001 (udpreceive): the daemon's defaults. Turn audio on with the speaker, type a prompt and press Return.",
					"linecount" : 2
				}
			},
			{
				"box" : {
					"id" : "obj-3",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 88.0, 420.0, 20.0 ],
					"text" : "1. prompt: type and press Return, or click generate"
				}
			},
			{
				"box" : {
					"id" : "obj-4",
					"maxclass" : "textedit",
					"numinlets" : 1,
					"numoutlets" : 4,
					"outlettype" : [ "", "int", "", "" ],
					"patching_rect" : [ 20.0, 110.0, 420.0, 24.0 ],
					"text" : "dark techno drums",
					"parameter_enable" : 0,
					"keymode" : 1,
					"lines" : 1,
					"outputmode" : 1,
					"bangmode" : 0
				}
			},
			{
				"box" : {
					"id" : "obj-5",
					"maxclass" : "button",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "bang" ],
					"patching_rect" : [ 450.0, 110.0, 24.0, 24.0 ]
				}
			},
			{
				"box" : {
					"id" : "obj-6",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 478.0, 112.0, 70.0, 20.0 ],
					"text" : "generate"
				}
			},
			{
				"box" : {
					"id" : "obj-7",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 150.0, 84.0, 22.0 ],
					"text" : "loadmess 1"
				}
			},
			{
				"box" : {
					"id" : "obj-8",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 110.0, 150.0, 105.0, 22.0 ],
					"text" : "loadmess 120."
				}
			},
			{
				"box" : {
					"id" : "obj-9",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 230.0, 150.0, 84.0, 22.0 ],
					"text" : "loadmess 0"
				}
			},
			{
				"box" : {
					"id" : "obj-10",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 340.0, 150.0, 84.0, 22.0 ],
					"text" : "loadmess 1"
				}
			},
			{
				"box" : {
					"id" : "obj-11",
					"maxclass" : "number",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 20.0, 182.0, 50.0, 22.0 ],
					"parameter_enable" : 0,
					"minimum" : 1,
					"maximum" : 64
				}
			},
			{
				"box" : {
					"id" : "obj-12",
					"maxclass" : "flonum",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 110.0, 182.0, 60.0, 22.0 ],
					"parameter_enable" : 0,
					"minimum" : 20.0,
					"maximum" : 400.0
				}
			},
			{
				"box" : {
					"id" : "obj-13",
					"maxclass" : "number",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 230.0, 182.0, 80.0, 22.0 ],
					"parameter_enable" : 0,
					"minimum" : 0,
					"maximum" : 2147483647
				}
			},
			{
				"box" : {
					"id" : "obj-14",
					"maxclass" : "toggle",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "int" ],
					"patching_rect" : [ 340.0, 182.0, 22.0, 22.0 ],
					"parameter_enable" : 0
				}
			},
			{
				"box" : {
					"id" : "obj-15",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 206.0, 40.0, 20.0 ],
					"text" : "bars"
				}
			},
			{
				"box" : {
					"id" : "obj-16",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 110.0, 206.0, 40.0, 20.0 ],
					"text" : "bpm"
				}
			},
			{
				"box" : {
					"id" : "obj-17",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 230.0, 206.0, 40.0, 20.0 ],
					"text" : "seed"
				}
			},
			{
				"box" : {
					"id" : "obj-18",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 366.0, 184.0, 130.0, 20.0 ],
					"text" : "new seed each time"
				}
			},
			{
				"box" : {
					"id" : "obj-19",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 20.0, 240.0, 84.0, 22.0 ],
					"text" : "route text"
				}
			},
			{
				"box" : {
					"id" : "obj-20",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 270.0, 70.0, 22.0 ],
					"text" : "tosymbol"
				}
			},
			{
				"box" : {
					"id" : "obj-21",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 20.0, 300.0, 49.0, 22.0 ],
					"text" : "t s b"
				}
			},
			{
				"box" : {
					"id" : "obj-22",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 340.0, 240.0, 42.0, 22.0 ],
					"text" : "gate"
				}
			},
			{
				"box" : {
					"id" : "obj-23",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "int" ],
					"patching_rect" : [ 340.0, 270.0, 112.0, 22.0 ],
					"text" : "random 1000000"
				}
			},
			{
				"box" : {
					"id" : "obj-24",
					"maxclass" : "newobj",
					"numinlets" : 3,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 110.0, 300.0, 98.0, 22.0 ],
					"text" : "pak 1 120. 0"
				}
			},
			{
				"box" : {
					"id" : "obj-25",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 110.0, 330.0, 168.0, 22.0 ],
					"text" : "bars $1 bpm $2 seed $3"
				}
			},
			{
				"box" : {
					"id" : "obj-26",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 20.0, 370.0, 63.0, 22.0 ],
					"text" : "zl join"
				}
			},
			{
				"box" : {
					"id" : "obj-27",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 400.0, 196.0, 22.0 ],
					"text" : "prepend /musicldm/generate"
				}
			},
			{
				"box" : {
					"id" : "obj-28",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 250.0, 370.0, 300.0, 48.0 ],
					"text" : "the prompt travels as one OSC string, followed by bars, bpm and seed: /musicldm/generate \"dark techno drums\" bars 1 bpm 120. seed 0",
					"linecount" : 3
				}
			},
			{
				"box" : {
					"id" : "obj-29",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 450.0, 420.0, 20.0 ],
					"text" : "2. the daemon's own slots, clock and status (click a message)"
				}
			},
			{
				"box" : {
					"id" : "obj-30",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 475.0, 315.0, 22.0 ],
					"text" : "/musicldm/slot 0 \"dark techno drums\" bars 2"
				}
			},
			{
				"box" : {
					"id" : "obj-31",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 503.0, 301.0, 22.0 ],
					"text" : "/musicldm/slot 1 \"warm lofi piano\" bars 4"
				}
			},
			{
				"box" : {
					"id" : "obj-32",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 531.0, 147.0, 22.0 ],
					"text" : "/musicldm/trigger 0"
				}
			},
			{
				"box" : {
					"id" : "obj-33",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 177.0, 531.0, 147.0, 22.0 ],
					"text" : "/musicldm/trigger 1"
				}
			},
			{
				"box" : {
					"id" : "obj-34",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 334.0, 531.0, 112.0, 22.0 ],
					"text" : "/musicldm/stop"
				}
			},
			{
				"box" : {
					"id" : "obj-35",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 559.0, 189.0, 22.0 ],
					"text" : "/musicldm/transport start"
				}
			},
			{
				"box" : {
					"id" : "obj-36",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 219.0, 559.0, 182.0, 22.0 ],
					"text" : "/musicldm/transport stop"
				}
			},
			{
				"box" : {
					"id" : "obj-37",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 587.0, 126.0, 22.0 ],
					"text" : "/musicldm/status"
				}
			},
			{
				"box" : {
					"id" : "obj-38",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 156.0, 587.0, 126.0, 22.0 ],
					"text" : "/musicldm/cancel"
				}
			},
			{
				"box" : {
					"id" : "obj-39",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 292.0, 587.0, 140.0, 22.0 ],
					"text" : "/musicldm/ping max"
				}
			},
			{
				"box" : {
					"id" : "obj-40",
					"maxclass" : "flonum",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 20.0, 620.0, 60.0, 22.0 ],
					"parameter_enable" : 0,
					"minimum" : 20.0,
					"maximum" : 400.0
				}
			},
			{
				"box" : {
					"id" : "obj-41",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 90.0, 620.0, 140.0, 22.0 ],
					"text" : "/musicldm/tempo $1"
				}
			},
			{
				"box" : {
					"id" : "obj-42",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 755.0, 420.0, 34.0 ],
					"text" : "Slots play through the daemon's own audio output, not through Max. In a message box, put a prompt in double quotes and write a backslash before a comma in it.",
					"linecount" : 2
				}
			},
			{
				"box" : {
					"id" : "obj-43",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 720.0, 160.0, 22.0 ],
					"text" : "udpsend 127.0.0.1 9000"
				}
			},
			{
				"box" : {
					"id" : "obj-44",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 560.0, 88.0, 420.0, 20.0 ],
					"text" : "3. replies from the daemon (every client's jobs arrive here)"
				}
			},
			{
				"box" : {
					"id" : "obj-45",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 560.0, 110.0, 110.0, 22.0 ],
					"text" : "udpreceive 9001"
				}
			},
			{
				"box" : {
					"id" : "obj-46",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 560.0, 145.0, 182.0, 22.0 ],
					"text" : "route /musicldm/progress"
				}
			},
			{
				"box" : {
					"id" : "obj-47",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 560.0, 175.0, 84.0, 22.0 ],
					"text" : "zl slice 1"
				}
			},
			{
				"box" : {
					"id" : "obj-48",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "int", "int" ],
					"patching_rect" : [ 560.0, 205.0, 84.0, 22.0 ],
					"text" : "unpack 0 0"
				}
			},
			{
				"box" : {
					"id" : "obj-49",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "float" ],
					"patching_rect" : [ 560.0, 235.0, 42.0, 22.0 ],
					"text" : "/ 1."
				}
			},
			{
				"box" : {
					"id" : "obj-50",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "float" ],
					"patching_rect" : [ 560.0, 265.0, 56.0, 22.0 ],
					"text" : "* 100."
				}
			},
			{
				"box" : {
					"id" : "obj-51",
					"maxclass" : "slider",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 560.0, 300.0, 300.0, 20.0 ],
					"parameter_enable" : 0,
					"size" : 101.0
				}
			},
			{
				"box" : {
					"id" : "obj-52",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 866.0, 300.0, 100.0, 20.0 ],
					"text" : "progress (%)"
				}
			},
			{
				"box" : {
					"id" : "obj-53",
					"maxclass" : "newobj",
					"numinlets" : 4,
					"numoutlets" : 4,
					"outlettype" : [ "", "", "", "" ],
					"patching_rect" : [ 700.0, 175.0, 385.0, 22.0 ],
					"text" : "route /musicldm/started /musicldm/done /musicldm/fail"
				}
			},
			{
				"box" : {
					"id" : "obj-54",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 1000.0, 145.0, 112.0, 22.0 ],
					"text" : "print musicldm"
				}
			},
			{
				"box" : {
					"id" : "obj-55",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 700.0, 235.0, 30.0, 22.0 ],
					"text" : "0"
				}
			},
			{
				"box" : {
					"id" : "obj-56",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 780.0, 205.0, 70.0, 22.0 ],
					"text" : "zl nth 2"
				}
			},
			{
				"box" : {
					"id" : "obj-57",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 780.0, 235.0, 49.0, 22.0 ],
					"text" : "t s b"
				}
			},
			{
				"box" : {
					"id" : "obj-58",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 900.0, 265.0, 35.0, 22.0 ],
					"text" : "100"
				}
			},
			{
				"box" : {
					"id" : "obj-59",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 560.0, 335.0, 80.0, 20.0 ],
					"text" : "last reply"
				}
			},
			{
				"box" : {
					"id" : "obj-60",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 640.0, 335.0, 91.0, 22.0 ],
					"text" : "prepend set"
				}
			},
			{
				"box" : {
					"id" : "obj-61",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 560.0, 362.0, 480.0, 22.0 ],
					"text" : ""
				}
			},
			{
				"box" : {
					"id" : "obj-62",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 560.0, 392.0, 200.0, 20.0 ],
					"text" : "last failure: id code message"
				}
			},
			{
				"box" : {
					"id" : "obj-63",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 780.0, 392.0, 91.0, 22.0 ],
					"text" : "prepend set"
				}
			},
			{
				"box" : {
					"id" : "obj-64",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 560.0, 419.0, 480.0, 22.0 ],
					"text" : ""
				}
			},
			{
				"box" : {
					"id" : "obj-65",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 560.0, 460.0, 460.0, 20.0 ],
					"text" : "4. each finished clip is loaded into buffer~ musicldm and loops here"
				}
			},
			{
				"box" : {
					"id" : "obj-66",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 780.0, 490.0, 119.0, 22.0 ],
					"text" : "prepend replace"
				}
			},
			{
				"box" : {
					"id" : "obj-67",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "float", "bang" ],
					"patching_rect" : [ 780.0, 520.0, 120.0, 22.0 ],
					"text" : "buffer~ musicldm"
				}
			},
			{
				"box" : {
					"id" : "obj-68",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 780.0, 560.0, 133.0, 22.0 ],
					"text" : "loop 1, startloop"
				}
			},
			{
				"box" : {
					"id" : "obj-69",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 560.0, 520.0, 77.0, 22.0 ],
					"text" : "startloop"
				}
			},
			{
				"box" : {
					"id" : "obj-70",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 640.0, 520.0, 42.0, 22.0 ],
					"text" : "stop"
				}
			},
			{
				"box" : {
					"id" : "obj-71",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 560.0, 490.0, 130.0, 20.0 ],
					"text" : "play again / stop"
				}
			},
			{
				"box" : {
					"id" : "obj-72",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "signal" ],
					"patching_rect" : [ 560.0, 560.0, 63.0, 22.0 ],
					"text" : "sig~ 1."
				}
			},
			{
				"box" : {
					"id" : "obj-73",
					"maxclass" : "newobj",
					"numinlets" : 3,
					"numoutlets" : 2,
					"outlettype" : [ "signal", "signal" ],
					"patching_rect" : [ 560.0, 600.0, 140.0, 22.0 ],
					"text" : "groove~ musicldm 1"
				}
			},
			{
				"box" : {
					"id" : "obj-74",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "signal" ],
					"patching_rect" : [ 560.0, 640.0, 56.0, 22.0 ],
					"text" : "*~ 0.5"
				}
			},
			{
				"box" : {
					"id" : "obj-75",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 660.0, 610.0, 98.0, 22.0 ],
					"text" : "loadmess 0.5"
				}
			},
			{
				"box" : {
					"id" : "obj-76",
					"maxclass" : "flonum",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 660.0, 640.0, 50.0, 22.0 ],
					"parameter_enable" : 0,
					"minimum" : 0.0,
					"maximum" : 2.0
				}
			},
			{
				"box" : {
					"id" : "obj-77",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 714.0, 640.0, 40.0, 20.0 ],
					"text" : "gain"
				}
			},
			{
				"box" : {
					"id" : "obj-78",
					"maxclass" : "ezdac~",
					"numinlets" : 2,
					"numoutlets" : 0,
					"patching_rect" : [ 560.0, 680.0, 45.0, 45.0 ]
				}
			},
			{
				"box" : {
					"id" : "obj-79",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 612.0, 690.0, 160.0, 20.0 ],
					"text" : "click to turn audio on"
				}
			},
			{
				"box" : {
					"id" : "obj-80",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 780.0, 600.0, 260.0, 48.0 ],
					"text" : "The path in /musicldm/done is a file on the daemon's computer: run the daemon on this computer, or share the output folder at the same path.",
					"linecount" : 3
				}
			},
			{
				"box" : {
					"id" : "obj-81",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 810.0, 520.0, 20.0 ],
					"text" : "5. evolve instead of jumping: vary or continue the last clip, let the slots drift, morph one slot into another"
				}
			},
			{
				"box" : {
					"id" : "obj-82",
					"maxclass" : "button",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "bang" ],
					"patching_rect" : [ 20.0, 840.0, 24.0, 24.0 ]
				}
			},
			{
				"box" : {
					"id" : "obj-83",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 48.0, 842.0, 40.0, 20.0 ],
					"text" : "vary"
				}
			},
			{
				"box" : {
					"id" : "obj-84",
					"maxclass" : "flonum",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 100.0, 841.0, 50.0, 22.0 ],
					"parameter_enable" : 0,
					"minimum" : 0.0,
					"maximum" : 1.0
				}
			},
			{
				"box" : {
					"id" : "obj-85",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 154.0, 842.0, 100.0, 20.0 ],
					"text" : "strength (0-1)"
				}
			},
			{
				"box" : {
					"id" : "obj-86",
					"maxclass" : "button",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "bang" ],
					"patching_rect" : [ 270.0, 840.0, 24.0, 24.0 ]
				}
			},
			{
				"box" : {
					"id" : "obj-87",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 298.0, 842.0, 240.0, 20.0 ],
					"text" : "extend: 'bars' new bars after it"
				}
			},
			{
				"box" : {
					"id" : "obj-88",
					"maxclass" : "toggle",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "int" ],
					"patching_rect" : [ 20.0, 880.0, 22.0, 22.0 ],
					"parameter_enable" : 0
				}
			},
			{
				"box" : {
					"id" : "obj-89",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 46.0, 880.0, 50.0, 20.0 ],
					"text" : "evolve"
				}
			},
			{
				"box" : {
					"id" : "obj-90",
					"maxclass" : "flonum",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "", "bang" ],
					"patching_rect" : [ 100.0, 880.0, 50.0, 22.0 ],
					"parameter_enable" : 0,
					"minimum" : 0.0,
					"maximum" : 1.0
				}
			},
			{
				"box" : {
					"id" : "obj-91",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 154.0, 880.0, 380.0, 20.0 ],
					"text" : "amount: /musicldm/set evolve amount (off: 0)"
				}
			},
			{
				"box" : {
					"id" : "obj-92",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 20.0, 915.0, 154.0, 22.0 ],
					"text" : "/musicldm/morph 0 1 4"
				}
			},
			{
				"box" : {
					"id" : "obj-93",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 184.0, 915.0, 154.0, 22.0 ],
					"text" : "/musicldm/morph 1 0 4"
				}
			},
			{
				"box" : {
					"id" : "obj-94",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 348.0, 915.0, 190.0, 34.0 ],
					"text" : "slot 0 into slot 1 over 4 bars, and back",
					"linecount" : 2
				}
			},
			{
				"box" : {
					"id" : "obj-95",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 20.0, 955.0, 520.0, 62.0 ],
					"text" : "vary and extend start from the clip last loaded into buffer~ (the path in /musicldm/done) with the last prompt sent, and take bpm and seed from section 1. Strength 0 keeps the clip, 1 is a new clip of the prompt. Evolve acts on the slots that set no evolve of their own; nothing is sent until you click it.",
					"linecount" : 4
				}
			},
			{
				"box" : {
					"id" : "obj-96",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 560.0, 745.0, 84.0, 22.0 ],
					"text" : "loadmess 0.5"
				}
			},
			{
				"box" : {
					"id" : "obj-97",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 660.0, 745.0, 84.0, 22.0 ],
					"text" : "loadmess 0.3"
				}
			},
			{
				"box" : {
					"id" : "obj-98",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 4,
					"outlettype" : [ "bang", "bang", "bang", "bang" ],
					"patching_rect" : [ 560.0, 780.0, 77.0, 22.0 ],
					"text" : "t b b b b"
				}
			},
			{
				"box" : {
					"id" : "obj-99",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 4,
					"outlettype" : [ "bang", "bang", "bang", "bang" ],
					"patching_rect" : [ 660.0, 780.0, 77.0, 22.0 ],
					"text" : "t b b b b"
				}
			},
			{
				"box" : {
					"id" : "obj-100",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 560.0, 815.0, 84.0, 22.0 ],
					"text" : "strength $1"
				}
			},
			{
				"box" : {
					"id" : "obj-101",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 660.0, 815.0, 70.0, 22.0 ],
					"text" : "extend $1"
				}
			},
			{
				"box" : {
					"id" : "obj-102",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 780.0, 780.0, 56.0, 22.0 ],
					"text" : "zl reg"
				}
			},
			{
				"box" : {
					"id" : "obj-103",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 780.0, 815.0, 84.0, 22.0 ],
					"text" : "prepend from"
				}
			},
			{
				"box" : {
					"id" : "obj-104",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 780.0, 850.0, 56.0, 22.0 ],
					"text" : "zl join"
				}
			},
			{
				"box" : {
					"id" : "obj-105",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 900.0, 780.0, 56.0, 22.0 ],
					"text" : "zl reg"
				}
			},
			{
				"box" : {
					"id" : "obj-106",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 2,
					"outlettype" : [ "", "" ],
					"patching_rect" : [ 900.0, 880.0, 56.0, 22.0 ],
					"text" : "zl join"
				}
			},
			{
				"box" : {
					"id" : "obj-107",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 960.0, 780.0, 100.0, 34.0 ],
					"text" : "the last prompt sent",
					"linecount" : 2
				}
			},
			{
				"box" : {
					"id" : "obj-108",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "int", "int" ],
					"patching_rect" : [ 560.0, 905.0, 42.0, 22.0 ],
					"text" : "t i i"
				}
			},
			{
				"box" : {
					"id" : "obj-109",
					"maxclass" : "newobj",
					"numinlets" : 1,
					"numoutlets" : 2,
					"outlettype" : [ "bang", "float" ],
					"patching_rect" : [ 660.0, 905.0, 42.0, 22.0 ],
					"text" : "t b f"
				}
			},
			{
				"box" : {
					"id" : "obj-110",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 660.0, 935.0, 42.0, 22.0 ],
					"text" : "gate"
				}
			},
			{
				"box" : {
					"id" : "obj-111",
					"maxclass" : "newobj",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "float" ],
					"patching_rect" : [ 560.0, 965.0, 42.0, 22.0 ],
					"text" : "* 0."
				}
			},
			{
				"box" : {
					"id" : "obj-112",
					"maxclass" : "message",
					"numinlets" : 2,
					"numoutlets" : 1,
					"outlettype" : [ "" ],
					"patching_rect" : [ 560.0, 995.0, 168.0, 22.0 ],
					"text" : "/musicldm/set evolve $1"
				}
			},
			{
				"box" : {
					"id" : "obj-113",
					"maxclass" : "comment",
					"numinlets" : 1,
					"numoutlets" : 0,
					"patching_rect" : [ 840.0, 780.0, 60.0, 20.0 ],
					"text" : "last path"
				}
			}
		],
		"lines" : [
			{
				"patchline" : {
					"source" : [ "obj-5", 0 ],
					"destination" : [ "obj-4", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-7", 0 ],
					"destination" : [ "obj-11", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-8", 0 ],
					"destination" : [ "obj-12", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-9", 0 ],
					"destination" : [ "obj-13", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-10", 0 ],
					"destination" : [ "obj-14", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-4", 0 ],
					"destination" : [ "obj-19", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-19", 0 ],
					"destination" : [ "obj-20", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-20", 0 ],
					"destination" : [ "obj-21", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-14", 0 ],
					"destination" : [ "obj-22", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-21", 1 ],
					"destination" : [ "obj-22", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-22", 0 ],
					"destination" : [ "obj-23", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-23", 0 ],
					"destination" : [ "obj-13", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-11", 0 ],
					"destination" : [ "obj-24", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-12", 0 ],
					"destination" : [ "obj-24", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-13", 0 ],
					"destination" : [ "obj-24", 2 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-24", 0 ],
					"destination" : [ "obj-25", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-21", 0 ],
					"destination" : [ "obj-26", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-25", 0 ],
					"destination" : [ "obj-26", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-26", 0 ],
					"destination" : [ "obj-27", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-40", 0 ],
					"destination" : [ "obj-41", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-27", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-30", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-31", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-32", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-33", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-34", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-35", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-36", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-37", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-38", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-39", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-41", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-45", 0 ],
					"destination" : [ "obj-46", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-46", 0 ],
					"destination" : [ "obj-47", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-47", 1 ],
					"destination" : [ "obj-48", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-48", 1 ],
					"destination" : [ "obj-49", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-48", 0 ],
					"destination" : [ "obj-49", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-49", 0 ],
					"destination" : [ "obj-50", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-50", 0 ],
					"destination" : [ "obj-51", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-46", 1 ],
					"destination" : [ "obj-53", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-46", 1 ],
					"destination" : [ "obj-54", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-53", 0 ],
					"destination" : [ "obj-55", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-55", 0 ],
					"destination" : [ "obj-51", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-53", 1 ],
					"destination" : [ "obj-56", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-56", 0 ],
					"destination" : [ "obj-57", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-57", 1 ],
					"destination" : [ "obj-58", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-58", 0 ],
					"destination" : [ "obj-51", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-46", 1 ],
					"destination" : [ "obj-60", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-60", 0 ],
					"destination" : [ "obj-61", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-53", 2 ],
					"destination" : [ "obj-63", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-63", 0 ],
					"destination" : [ "obj-64", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-57", 0 ],
					"destination" : [ "obj-66", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-66", 0 ],
					"destination" : [ "obj-67", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-67", 1 ],
					"destination" : [ "obj-68", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-72", 0 ],
					"destination" : [ "obj-73", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-68", 0 ],
					"destination" : [ "obj-73", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-69", 0 ],
					"destination" : [ "obj-73", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-70", 0 ],
					"destination" : [ "obj-73", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-73", 0 ],
					"destination" : [ "obj-74", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-75", 0 ],
					"destination" : [ "obj-76", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-76", 0 ],
					"destination" : [ "obj-74", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-74", 0 ],
					"destination" : [ "obj-78", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-74", 0 ],
					"destination" : [ "obj-78", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-82", 0 ],
					"destination" : [ "obj-98", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-86", 0 ],
					"destination" : [ "obj-99", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-96", 0 ],
					"destination" : [ "obj-84", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-97", 0 ],
					"destination" : [ "obj-90", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-98", 3 ],
					"destination" : [ "obj-84", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-98", 2 ],
					"destination" : [ "obj-102", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-98", 1 ],
					"destination" : [ "obj-22", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-98", 0 ],
					"destination" : [ "obj-105", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-99", 3 ],
					"destination" : [ "obj-11", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-99", 2 ],
					"destination" : [ "obj-102", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-99", 1 ],
					"destination" : [ "obj-22", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-99", 0 ],
					"destination" : [ "obj-105", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-84", 0 ],
					"destination" : [ "obj-100", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-11", 0 ],
					"destination" : [ "obj-101", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-100", 0 ],
					"destination" : [ "obj-104", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-101", 0 ],
					"destination" : [ "obj-104", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-57", 0 ],
					"destination" : [ "obj-102", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-102", 0 ],
					"destination" : [ "obj-103", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-103", 0 ],
					"destination" : [ "obj-104", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-104", 0 ],
					"destination" : [ "obj-106", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-20", 0 ],
					"destination" : [ "obj-105", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-105", 0 ],
					"destination" : [ "obj-106", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-106", 0 ],
					"destination" : [ "obj-26", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-88", 0 ],
					"destination" : [ "obj-108", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-108", 1 ],
					"destination" : [ "obj-110", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-108", 0 ],
					"destination" : [ "obj-111", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-90", 0 ],
					"destination" : [ "obj-109", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-109", 1 ],
					"destination" : [ "obj-111", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-109", 0 ],
					"destination" : [ "obj-110", 1 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-110", 0 ],
					"destination" : [ "obj-111", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-111", 0 ],
					"destination" : [ "obj-112", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-112", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-92", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			},
			{
				"patchline" : {
					"source" : [ "obj-93", 0 ],
					"destination" : [ "obj-43", 0 ]
				}
			}
		],
		"dependency_cache" : [  ],
		"autosave" : 0
	}
}
